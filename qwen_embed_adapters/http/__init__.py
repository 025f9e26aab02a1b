"""The HTTP half shared by RemoteEmbedder and RemoteReranker, held (not inherited) by each.

- ``engines``: one profile per engine family (routes, refusal wordings, truncate switch, the doctor's fixes).
"""
