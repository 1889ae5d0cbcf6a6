"""The HTTP/WebSocket API: thin handlers over the domain and the store."""
