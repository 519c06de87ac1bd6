"""Common signatures ("tasks"): what it means for a model to be an image feature vector, a text embedding...

The core owns the idea because the catalog stores it (``version_task``), search
filters on it and every publish checks it: ``definitions`` holds the data model
of a task and the built-in definitions, ``conformance`` checks a version against
every registered definition. Definitions arrive through the
``register_signature_definitions`` hook — the built-ins from the ordinary plugin
``registry.plugins.signatures``, others from third-party plugins — so a fresh plugin
manager sees exactly the tasks registered with it.
"""
