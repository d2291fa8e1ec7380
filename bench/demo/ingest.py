# demo-ingest: gunicorn + Flask in a memory cgroup; /leak keeps what it allocates.
import os
from flask import Flask
app = Flask(__name__)
LEAK_BYTES = int(os.environ.get('DEMO_LEAK_BYTES', 2 << 20))
HOARD = []

@app.route('/')
def index():
    return 'demo-ingest ok\n'

@app.route('/leak')
def leak():
    # Keeps what it allocates (pages touched): the worker grows until the cgroup's OOM killer acts.
    HOARD.append(b'x' * LEAK_BYTES)
    return 'holding %d MiB\n' % (len(HOARD) * LEAK_BYTES >> 20)
