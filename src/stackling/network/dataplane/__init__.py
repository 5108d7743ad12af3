"""Data planes: the kernel side of networking (``linuxbridge``) and its no-op twin (``noop``)."""
