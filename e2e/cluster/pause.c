/*
 * The pod sandbox process of the local e2e cluster (packaged by local.sh as
 * registry.k8s.io/pause:3.6). It holds the pod's namespaces open by staying alive, reaps the
 * orphans that get re-parented to it as the pod's PID 1, and exits on SIGINT or SIGTERM.
 * Built with `gcc -static`, so the image needs nothing but this binary.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  int saved = errno; /* a handler must not change errno under the interrupted code */
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_stop;
  if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) return 1;
  sa.sa_handler = on_child;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGCHLD, &sa, NULL) != 0) return 1;
  for (;;) pause(); /* every signal returns here; only on_stop ends the process */
}
