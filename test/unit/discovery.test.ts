/** Discovery: classification of command lines, and real processes found from /proc. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { classify, discover, isPythonProcess, serviceName } from '../../agent/registry/discovery';
import { python, stopAll, waitFor } from '../helpers/procs';
import { freePort } from '../helpers/services';

afterAll(stopAll);

describe('classify', () => {
  const cases: Array<[string[], string]> = [
    [['/usr/bin/python3', '/usr/bin/gunicorn', '-w', '2', 'app:app'], 'gunicorn'],
    [['gunicorn: master [app:app]'], 'gunicorn'],
    [['/usr/bin/python3', '-m', 'uvicorn', 'asgi:app', '--workers', '2'], 'uvicorn'],
    [['uwsgi', '--http', ':8000', '--wsgi-file', 'app.py'], 'uwsgi'],
    [['/usr/bin/python3', '/usr/bin/hypercorn', 'app:app'], 'hypercorn'],
    [['/usr/bin/python3', '/usr/bin/daphne', 'proj.asgi:application'], 'daphne'],
    [['/usr/bin/python3', '/usr/bin/celery', '-A', 'proj', 'worker'], 'celery'],
    [['/usr/bin/python3', 'server.py'], 'python'],
  ];
  test.each(cases)('%j is %s', (cmd, kind) => expect(classify(cmd)).toBe(kind));

  test('python-ness comes from the binary or argv[0]', () => {
    expect(isPythonProcess('/usr/bin/python3.11', ['python3', 'x.py'])).toBe(true);
    expect(isPythonProcess('/usr/bin/uwsgi-core', ['uwsgi'])).toBe(true);
    expect(isPythonProcess('/usr/sbin/nginx', ['nginx: master process'])).toBe(false);
  });

  test('names say the kind, the app and the ports, never host:port', () => {
    expect(serviceName('gunicorn', ['/usr/bin/python3', '/usr/bin/gunicorn', '-b', '127.0.0.1:8000', 'myproj.wsgi:application'], [8000]))
      .toBe('gunicorn myproj.wsgi:application :8000');
    expect(serviceName('python', ['/usr/bin/python3', '/srv/server.py'], [9000])).toBe('python server.py :9000');
  });
});

describe('discover on real processes', () => {
  test('a plain python server holding a listening socket is a service; an idle python is not', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-disc-'));
    const port = await freePort();
    const server = python(`import http.server, socketserver\nsocketserver.TCPServer(("127.0.0.1", ${port}), http.server.SimpleHTTPRequestHandler).serve_forever()  # ${dir}`);
    const idle = python(`import time\ntime.sleep(60)  # ${dir}`);
    const svc = await waitFor(() => discover().find((s) => s.master.pid === server.pid && s.ports.includes(port)), 10000, 'the server');
    expect(svc.kind).toBe('python');
    expect(svc.workers).toEqual([]);
    expect(discover().some((s) => s.master.pid === idle.pid)).toBe(false);
    // Explicit selection takes what auto-discovery leaves, and exclusion wins.
    expect(discover({ pids: [idle.pid!], autoDiscover: false }).map((s) => s.master.pid)).toEqual([idle.pid]);
    const escaped = dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(discover({ match: new RegExp(escaped), autoDiscover: false }).map((s) => s.master.pid).sort()).toEqual([server.pid, idle.pid].sort());
    expect(discover({ exclude: new RegExp(escaped) }).some((s) => s.master.pid === server.pid)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
