# A CPU hog for the demo: busy 3 s, idle 1 s, for argv[1] seconds.
import ctypes, sys, time
ctypes.CDLL(None).prctl(15, b'cpu-hog', 0, 0, 0)   # PR_SET_NAME: the culprit's name in slow-wakeup markers
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    end = time.monotonic() + 3.0          # 3 s busy, 1 s idle: contention comes in waves
    while time.monotonic() < end:
        pass
    time.sleep(1.0)
