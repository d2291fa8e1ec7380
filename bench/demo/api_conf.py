# gunicorn config of demo-api: a listener in the arbiter that never closes what it accepts.
import os, socket, threading
timeout = int(os.environ['DEMO_TIMEOUT_S'])
graceful_timeout = 2
LEAK_PORT = int(os.environ['DEMO_LEAK_PORT'])
KEEP = int(os.environ['DEMO_CLOSE_WAIT_KEEP'])

def _close_wait_leak():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', LEAK_PORT))
    srv.listen(128)
    held = []
    while True:
        conn, _ = srv.accept()
        held.append(conn)  # never read, never closed: the peer's FIN leaves it in CLOSE_WAIT
        if len(held) > KEEP:
            held.pop(0).close()

def when_ready(server):
    threading.Thread(target=_close_wait_leak, name='close-wait-leak', daemon=True).start()
