"""The registry server: one catalog and one artifact store shared by an organisation over HTTP.

``model-registry serve`` runs ``create_app`` under uvicorn. A process holds no
state of its own — everything lives in the catalog database and the artifact
store — so several run behind a load balancer over one PostgreSQL and one
bucket. It speaks three dialects on one port:

- ``/api/v1/...``: the JSON API that client mode (``MODEL_REGISTRY_URL``) uses;
- ``/{publisher}/{model}[/{version}|@{alias}]?tf-hub-format=compressed``: the
  model URLs tfhub.dev defined, which the unmodified tensorflow_hub client reads;
- the same URLs without the query, and ``/``: the web catalog's pages.

``registry.server.app.create_app`` builds the application; importing this
package alone imports nothing from the web stack.
"""
