// Process churn for the churn tests, compiled at test time by test/helpers/forker.ts.
// C, not Python: a Python process that forks copies an interpreter's page tables
// each time, and fresh machines manage ~120 such forks/s; a C loop ~1,000/s.
//
//   forker calibrate MS
//       forks and reaps one child at a time, flat out, for MS ms of wall time;
//       prints "forks N seconds S".
//   forker churn RATE SECONDS [TAG]
//       forks a keeper child that sleeps (a master with a worker, as discovery
//       expects), prints "ready", waits for a line on stdin, then forks children
//       that exit at once, paced to RATE/s for SECONDS of wall time (a slower
//       machine forks fewer, never for longer), reaps them all, prints
//       "forks N seconds S", waits for another line and kills the keeper.
//       TAG is unused: it is in argv for --match.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void wait_line(void) {
  int c;
  while ((c = getchar()) != EOF && c != '\n') {
  }
}

static pid_t fork_exiting_child(void) {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  return pid;
}

static int calibrate(double ms) {
  long n = 0;
  double t0 = now_s(), end = t0 + ms / 1000.0;
  while (now_s() < end) {
    pid_t pid = fork_exiting_child();
    waitpid(pid, NULL, 0);
    n++;
  }
  printf("forks %ld seconds %.3f\n", n, now_s() - t0);
  return 0;
}

static int churn(double rate, double seconds) {
  pid_t keeper = fork();
  if (keeper == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the master
    for (;;) pause();
  }
  printf("ready\n");
  fflush(stdout);
  wait_line();
  long forked = 0, reaped = 0;
  double t0 = now_s(), end = t0 + seconds;
  for (;;) {
    double t = now_s();
    if (t >= end) break;
    long due = (long)((t - t0) * rate) + 1;
    // A bounded burst between clock reads: after a stall the pace resumes,
    // it does not try to catch up past the deadline.
    for (int i = 0; i < 64 && forked < due; i++, forked++) fork_exiting_child();
    while (reaped < forked && waitpid(-1, NULL, WNOHANG) > 0) reaped++;
    if (forked >= due) {
      struct timespec ts = {0, 500 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  while (reaped < forked && waitpid(-1, NULL, 0) > 0) reaped++;
  printf("forks %ld seconds %.3f\n", forked, now_s() - t0);
  fflush(stdout);
  wait_line();
  kill(keeper, SIGKILL);
  waitpid(keeper, NULL, 0);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 3 && strcmp(argv[1], "calibrate") == 0) return calibrate(atof(argv[2]));
  if (argc >= 4 && strcmp(argv[1], "churn") == 0) return churn(atof(argv[2]), atof(argv[3]));
  fprintf(stderr, "usage: forker calibrate MS | forker churn RATE SECONDS [TAG]\n");
  return 2;
}
