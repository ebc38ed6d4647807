/*
 * The pod sandbox process of the ferry k8s peer (the "pause" container): it
 * holds the pod's namespaces, so it only has to stay alive, reap whatever
 * becomes its child (it is PID 1 of a pod sharing its PID namespace), and exit
 * when asked. Built statically by tests/peers/k8s/install.sh.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("ferry pause 1");
        return 0;
    }
    if (getpid() != 1)
        fprintf(stderr, "pause: not running as PID 1\n");

    sigset_t wanted;
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGCHLD);
    sigaddset(&wanted, SIGINT);
    sigaddset(&wanted, SIGTERM);
    /* Block them and take them synchronously: no handlers, no races. */
    if (sigprocmask(SIG_BLOCK, &wanted, NULL) != 0) {
        perror("pause: sigprocmask");
        return 1;
    }
    for (;;) {
        int sig = 0;
        if (sigwait(&wanted, &sig) != 0)
            continue;
        if (sig == SIGCHLD) {
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
            continue;
        }
        return 0; /* SIGINT or SIGTERM */
    }
}
