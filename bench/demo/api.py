# demo-api: gunicorn + Flask, its workers pinned to one CPU beside CPU hogs.
import time
from flask import Flask
app = Flask(__name__)

@app.route('/')
def index():
    return 'demo-api ok\n'

@app.route('/work')
def work():
    # A few ms of CPU per request: under the hogs, each one waits for the CPU.
    total = 0
    for i in range(60000):
        total += i * i
    return str(total)

@app.route('/slow')
def slow():
    # Blocks past gunicorn's --timeout: the arbiter kills this worker.
    time.sleep(120)
    return 'too late\n'
