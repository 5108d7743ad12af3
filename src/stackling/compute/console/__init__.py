"""Remote consoles (Nova's consoleauth + novncproxy/serialproxy): one-time expiring tokens
(:mod:`.tokens`) and the websocket proxy to a VM's VNC or serial socket (:mod:`.proxy`)."""
