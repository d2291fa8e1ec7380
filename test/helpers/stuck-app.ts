/**
 * A Flask app whose GET /report gets stuck in slow_report() (a sleep an hour
 * long), for the Python stack tests: the frame and its line are known.
 */

export const FLASK_STUCK = [
  'import time',
  'from flask import Flask',
  'app = Flask(__name__)',
  '@app.route("/")',
  'def index():',
  '    return "ok"',
  'def slow_report():',
  '    time.sleep(3600)  # stuck here',
  '    return "never"',
  '@app.route("/report")',
  'def report():',
  '    return slow_report()',
].join('\n');

/** 1-based line of the first line of `src` containing `marker`. */
export const lineOf = (src: string, marker: string) => src.split('\n').findIndex((l) => l.includes(marker)) + 1;
