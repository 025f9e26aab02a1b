"""The HTTP half shared by RemoteEmbedder and RemoteReranker, held (not inherited) by each.

- ``engines``: one profile per engine family (routes, refusal wordings, truncate switch, the doctor's fixes).
- ``routes``: URL checks, the routes to try for a base URL, route discovery.
- ``limits``: client-side rate limits, retry backoff, ``Retry-After``.
- ``pool``: the servers of one client, load balancing, benching a failed one.
- ``loop``: the I/O-free request loop and its decisions (``StepKind``, ``OpKind``), driven by a ``Policy``.
- ``session``: the httpx clients (one async client per event loop, ``LoopClients``), injection of
  ``http_client`` / ``transport``, and the sync and async shells that run the loop.
- ``embeddings_api`` / ``rerank_api``: the policies of the OpenAI embeddings and the ``/rerank`` APIs.

It imports only the package's lowest layer (errors, models, vectors, _urls, settings).
"""

# Nothing is re-exported: each part is imported by its module path (``from qwen_embed_adapters.http.session
# import LoopClients``).
__all__: list[str] = []
