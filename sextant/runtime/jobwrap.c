/*
 * sextant-jobwrap: the light wrapper of a local trial job.
 *
 *     sextant-jobwrap EXIT_JSON -- COMMAND [ARGS...]
 *
 * Runs COMMAND (no shell; PATH is searched as execvp does) with the wrapper's own stdin,
 * stdout, stderr and environment, waits for it, and writes EXIT_JSON atomically (temporary
 * file + rename) with the exit code, a reason and a message. The local runtime uses it for
 * trials whose metrics are read after the job ends (StdOut, File, Push, None without
 * early-stopping rules): then nothing needs to watch the trial while it runs, and this
 * program costs about a millisecond where a Python wrapper costs tens.
 *
 * Why a wrapper at all: only a parent can learn a child's exit status. The trial controller
 * that starts a job may be restarted before the job ends; the job's exit code must still be
 * recorded on disk for the next controller to read.
 *
 * Signals: SIGTERM/SIGINT/SIGHUP received by the wrapper are passed on to the command and
 * remembered, so the record says "Killed". The runtime signals the whole process group, so
 * the command usually receives the signal directly as well.
 *
 * EXIT_JSON fields (as the Python collector writes them): exit_code (negative = killed by
 * that signal), reason ("Completed", "Error" or "Killed"), message, completion_time (RFC 3339,
 * UTC, microseconds) and "collected": false (the runtime reads the metrics afterwards).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t child_pid = 0;
static volatile sig_atomic_t killed = 0;

static void on_signal(int sig) {
    killed = 1;
    if (child_pid > 0) kill((pid_t)child_pid, sig);
}

/* Appends s to out as the inside of a JSON string; out has room for cap bytes. */
static size_t json_escape(char *out, size_t cap, size_t len, const char *s) {
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { out[len++] = '\\'; out[len++] = (char)c; }
        else if (c < 0x20) len += (size_t)snprintf(out + len, cap - len, "\\u%04x", c);
        else out[len++] = (char)c;
    }
    out[len] = '\0';
    return len;
}

static void now_rfc3339(char *out, size_t cap) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static int write_record(const char *path, int code, const char *reason, const char *message) {
    char stamp[64], text[8192], tmp[4096];
    now_rfc3339(stamp, sizeof stamp);
    size_t len = (size_t)snprintf(text, sizeof text,
                                  "{\"collected\": false, \"completion_time\": \"%s\", \"exit_code\": %d, "
                                  "\"reason\": \"%s\", \"message\": \"", stamp, code, reason);
    len = json_escape(text, sizeof text - 8, len, message);
    len += (size_t)snprintf(text + len, sizeof text - len, "\"}\n");

    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    snprintf(tmp, sizeof tmp, "%.*s.%s.%d.tmp", dir_len, path, slash ? slash + 1 : path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    ssize_t written = write(fd, text, len);
    close(fd);
    if (written != (ssize_t)len || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: sextant-jobwrap EXIT_JSON -- COMMAND [ARGS...]\n");
        return 2;
    }
    const char *record = argv[1];
    char **command = argv + 3;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    char message[4096];
    if (killed) {  /* stopped before the command could start */
        write_record(record, -SIGTERM, "Killed", "trial was stopped before it started");
        return 128 + SIGTERM;
    }

    /* The child reports a failed exec through this pipe (closed on a successful exec). */
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        snprintf(message, sizeof message, "cannot start command: %s", strerror(errno));
        write_record(record, 127, "Error", message);
        return 127;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(message, sizeof message, "cannot start command: %s (%s)", command[0], strerror(errno));
        write_record(record, 127, "Error", message);
        return 127;
    }
    if (pid == 0) {
        close(report[0]);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvp(command[0], command);
        int err = errno;
        ssize_t ignored = write(report[1], &err, sizeof err);
        (void)ignored;
        _exit(127);
    }
    child_pid = pid;
    if (killed) kill(pid, SIGTERM);  /* a signal that came between fork and here */
    close(report[1]);
    int exec_errno = 0;
    ssize_t got;
    do got = read(report[0], &exec_errno, sizeof exec_errno); while (got < 0 && errno == EINTR);
    close(report[0]);

    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            write_record(record, 127, "Error", "lost track of the command");
            return 127;
        }
    }
    if (got == (ssize_t)sizeof exec_errno) {
        snprintf(message, sizeof message, "%s: %s (%s)",
                 exec_errno == ENOENT ? "command not found" : "cannot start command",
                 command[0], strerror(exec_errno));
        /* In the job's output log too, as the Python collector does. */
        fprintf(stdout, "%s\n", message);
        fflush(stdout);
        write_record(record, 127, "Error", message);
        return 127;
    }

    int code;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        code = -sig;
        if (killed) snprintf(message, sizeof message, "trial was stopped");
        else snprintf(message, sizeof message, "killed by signal SIG%s", abbrev ? abbrev : "?");
    } else {
        code = WEXITSTATUS(status);
        if (killed) snprintf(message, sizeof message, "trial was stopped");
        else if (code == 0) message[0] = '\0';
        else snprintf(message, sizeof message, "exit code %d", code);
    }
    const char *reason = killed ? "Killed" : code == 0 ? "Completed" : "Error";
    if (write_record(record, code, reason, message) != 0) {
        fprintf(stderr, "sextant-jobwrap: cannot write %s: %s\n", record, strerror(errno));
        return 125;
    }
    return code >= 0 ? code : 128 - code;
}
