/* The sandbox ("pause") container of every pod on the e2e node: it holds the pod's namespaces
 * and reaps zombies as PID 1 until told to stop. No registry is reachable here, so the suite
 * builds it (static, under 1 MiB) instead of pulling registry.k8s.io/pause. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void Stop(int sig) { _exit(128 + sig); }

static void Reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction stop = {.sa_handler = Stop};
  struct sigaction reap = {.sa_handler = Reap, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &reap, NULL) < 0) {
    return 1;
  }
  for (;;) pause();
}
