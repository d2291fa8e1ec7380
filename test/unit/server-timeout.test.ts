/** The window a death is explained over: the server's own timeout, from its master's command line or config (pure). */
import { configValue, DEFAULT_WINDOW_MS, optionValue, serverWindow } from '../../agent/deaths/server-timeout';

const files = (map: Record<string, string>) => (p: string) => map[p] ?? null;
const none = () => null;

describe('gunicorn', () => {
  test.each([
    [['gunicorn', '--timeout', '45', 'app:app'], 45_000, 'gunicorn --timeout 45'],
    [['gunicorn', '--timeout=45', 'app:app'], 45_000, 'gunicorn --timeout 45'],
    [['gunicorn', '-t', '12', 'app:app'], 12_000, 'gunicorn --timeout 12'],
    [['gunicorn', '-t12', 'app:app'], 12_000, 'gunicorn --timeout 12'],
    [['/usr/bin/python3', '/usr/bin/gunicorn', '-w', '2', '--timeout', '5', '--timeout', '7', 'app:app'], 7_000, 'gunicorn --timeout 7'],
  ])('%j', (argv, ms, source) => {
    expect(serverWindow('gunicorn', argv, {}, none)).toEqual({ ms, source });
  });

  test('GUNICORN_CMD_ARGS when the command line has none; the command line wins over it', () => {
    expect(serverWindow('gunicorn', ['gunicorn', 'app:app'], { GUNICORN_CMD_ARGS: '--workers 3 --timeout 90' }, none))
      .toEqual({ ms: 90_000, source: 'GUNICORN_CMD_ARGS --timeout 90' });
    expect(serverWindow('gunicorn', ['gunicorn', '-t', '20', 'app:app'], { GUNICORN_CMD_ARGS: '--timeout 90' }, none).ms).toBe(20_000);
  });

  test('the -c config file, else ./gunicorn.conf.py; a python: module is not read', () => {
    const conf = 'bind = "0.0.0.0:8000"\nworkers = 4  # cores\ntimeout = 60   # seconds\n# timeout = 5\n';
    expect(serverWindow('gunicorn', ['gunicorn', '-c', 'conf/prod.py', 'app:app'], {}, files({ 'conf/prod.py': conf })))
      .toEqual({ ms: 60_000, source: 'timeout = 60 in conf/prod.py' });
    expect(serverWindow('gunicorn', ['gunicorn', '--config=file:/etc/g.py', 'app:app'], {}, files({ '/etc/g.py': 'timeout=15' })).ms).toBe(15_000);
    expect(serverWindow('gunicorn', ['gunicorn', 'app:app'], {}, files({ 'gunicorn.conf.py': 'timeout = 33' })))
      .toEqual({ ms: 33_000, source: 'timeout = 33 in gunicorn.conf.py' });
    expect(serverWindow('gunicorn', ['gunicorn', '-c', 'python:settings', 'app:app'], {}, () => 'timeout = 1')).toEqual({ ms: DEFAULT_WINDOW_MS, source: 'default' });
    // The command line wins over the file.
    expect(serverWindow('gunicorn', ['gunicorn', '-c', 'c.py', '-t', '8', 'app:app'], {}, files({ 'c.py': 'timeout = 60' })).ms).toBe(8_000);
  });

  test('--timeout 0 means no timeout: the default window, saying why', () => {
    expect(serverWindow('gunicorn', ['gunicorn', '--timeout', '0', 'app:app'], {}, none))
      .toEqual({ ms: DEFAULT_WINDOW_MS, source: 'default (gunicorn --timeout 0: no timeout)' });
  });

  test('nothing readable: the default', () => {
    expect(serverWindow('gunicorn', ['gunicorn: master [app:app]'], {}, none)).toEqual({ ms: DEFAULT_WINDOW_MS, source: 'default' });
    expect(serverWindow('gunicorn', ['gunicorn', '--timeout', 'soon'], {}, none).source).toBe('default');
  });
});

test('uvicorn: --timeout-graceful-shutdown', () => {
  expect(serverWindow('uvicorn', ['uvicorn', 'app:app', '--timeout-graceful-shutdown', '10'], {}, none))
    .toEqual({ ms: 10_000, source: 'uvicorn --timeout-graceful-shutdown 10' });
  expect(serverWindow('uvicorn', ['uvicorn', '--timeout-graceful-shutdown=4', 'app:app'], {}, none).ms).toBe(4_000);
  expect(serverWindow('uvicorn', ['uvicorn', '--timeout-keep-alive', '5', 'app:app'], {}, none).source).toBe('default');
});

test('uWSGI: --harakiri, -t, or harakiri in the ini file', () => {
  expect(serverWindow('uwsgi', ['uwsgi', '--harakiri', '20', '--master'], {}, none)).toEqual({ ms: 20_000, source: 'uwsgi --harakiri 20' });
  expect(serverWindow('uwsgi', ['uwsgi', '-t', '25'], {}, none).ms).toBe(25_000);
  const ini = '[uwsgi]\nmaster = true\nharakiri = 15 ; seconds\n';
  expect(serverWindow('uwsgi', ['uwsgi', '--ini', 'app.ini'], {}, files({ 'app.ini': ini }))).toEqual({ ms: 15_000, source: 'harakiri = 15 in app.ini' });
  expect(serverWindow('uwsgi', ['uwsgi', 'app.ini'], {}, files({ 'app.ini': ini })).ms).toBe(15_000);
  expect(serverWindow('uwsgi', ['uwsgi', '--ini', 'app.ini:prod'], {}, files({ 'app.ini': ini })).ms).toBe(15_000);
});

test('servers with no such setting: the default', () => {
  for (const kind of ['celery', 'hypercorn', 'daphne', 'python', 'unknown'] as const)
    expect(serverWindow(kind, ['x', '--timeout', '5'], {}, none)).toEqual({ ms: DEFAULT_WINDOW_MS, source: 'default' });
});

test('option and config readers', () => {
  expect(optionValue(['a', '--x', '1', '--x=2'], 'x')).toBe('2');
  expect(optionValue(['a', '--xy', '1'], 'x')).toBeUndefined();
  expect(optionValue(['a', '-t'], 'timeout', 't')).toBeUndefined();
  expect(configValue('timeout: 7', 'timeout')).toBe(7);
  expect(configValue('graceful_timeout = 9', 'timeout')).toBeUndefined();
  expect(configValue('timeout = 2.5', 'timeout')).toBe(2.5);
});
