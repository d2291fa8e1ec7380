/**
 * A Flask app that leaks CLOSE_WAIT on demand, and its client, for the tests
 * that count a service's sockets in a network namespace of its own (ip netns,
 * a container): GET /hold answers but keeps a dup of the client socket in the
 * worker; GET /block/S holds the (sync) worker for S seconds.
 */
import * as fs from 'fs';
import * as path from 'path';

const HOLD_APP = `
import os, time
from flask import Flask, request
app = Flask(__name__)
held = []

@app.route("/")
def index():
    return "ok"

@app.route("/block/<int:seconds>")
def block(seconds):
    time.sleep(seconds)
    return "done"

@app.route("/hold")
def hold():
    # A dup of the client socket outlives gunicorn's close: no FIN from here, and the
    # client's FIN leaves the connection in CLOSE_WAIT for as long as this worker lives.
    held.append(os.dup(request.environ["gunicorn.socket"].fileno()))
    return "held %d" % len(held)
`;

/** `client.py hold N`: N requests to /hold, each closed once answered; `client.py block N`: N held /block requests. Prints "sent". */
const holdClient = (port: number) => `
import socket, sys, time
mode, n = sys.argv[1], int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(('127.0.0.1', ${port}), timeout=30)
    if mode == 'hold':
        s.sendall(b'GET /hold HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n')
        buf = b''
        while b'held' not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        s.close()
    else:
        s.sendall(b'GET /block/60 HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n')
        socks.append(s)
print('sent', flush=True)
time.sleep(3600)
`;

/** Writes the app (module `holdapp`) and its client (client.py, for `port`) into `dir`. */
export function writeHoldApp(dir: string, port: number): void {
  fs.writeFileSync(path.join(dir, 'holdapp.py'), HOLD_APP);
  fs.writeFileSync(path.join(dir, 'client.py'), holdClient(port));
}
