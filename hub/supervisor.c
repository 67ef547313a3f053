/*
 * supervisor.c - forks the worker processes, restarts those that die,
 * passes signals on (see supervisor.h).
 *
 * Signals are blocked and taken one at a time with sigtimedwait(), so
 * nothing runs in a signal handler and the only timers are the restart
 * deadlines and, while stopping, the deadline of the last resort SIGKILL.
 */
#define _GNU_SOURCE
#include "supervisor.h"

#include "hub.h"
#include "log.h"
#include "notify.h"
#include "workers.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The supervisor's record of one worker. */
struct sup_child {
    pid_t pid;          /* 0 while none runs */
    int64_t started_ms; /* when it was forked (CLOCK_MONOTONIC) */
    int64_t due_ms;     /* when to start it again; 0: not due */
    int early_deaths;   /* deaths at start in a row (sup_restart_delay) */
    int stalled;        /* its loop has been seen stuck (logged once per stall) */
};

/* Everything supervisor_run() keeps; lives on its stack. */
struct sup {
    int n;                               /* workers configured */
    struct sup_child child[WORKERS_MAX]; /* n of them in use */
    struct workers *w;                   /* the shared table (owned: mapped and unmapped here) */
    sigset_t old_mask;                   /* the mask before supervisor_run(), restored in workers */
    pid_t self;                          /* the supervisor's pid, for the workers' parent check */
    sup_worker_fn fn;                    /* what each worker runs */
    void *ud;                            /* its argument (the caller's, not owned) */
    int stopping;                        /* a stop signal came, or the supervisor gave up */
    int64_t kill_at_ms;                  /* while stopping: SIGKILL what is left at this time */
    int rc;                              /* exit status so far */
    int announced;                       /* READY=1 has been sent (notify.h) */
    int64_t wd_ms;                       /* the service manager's watchdog interval, 0: none */
    int64_t ping_at_ms;                  /* when the next watchdog ping is due */
};

int
sup_restart_delay(int *early_deaths, int64_t lived_ms)
{
    if (lived_ms >= SUP_EARLY_DEATH_MS) {
        *early_deaths = 0;
        return SUP_BACKOFF_MIN_MS;
    }
    if (++*early_deaths >= SUP_EARLY_DEATHS_MAX)
        return -1;
    int shift = *early_deaths - 1 < 16 ? *early_deaths - 1 : 16; /* the cap is reached by then */
    int64_t delay = (int64_t)SUP_BACKOFF_MIN_MS << shift;
    return delay > SUP_BACKOFF_MAX_MS ? SUP_BACKOFF_MAX_MS : (int)delay;
}

/* Forks worker k. A failed fork counts as a death at start. */
static void
sup_spawn(struct sup *s, int k)
{
    struct sup_child *c = &s->child[k];
    c->due_ms = 0;
    c->started_ms = hub_now_ms();
    c->stalled = 0;
    /* Before the fork: from then on the slot's heartbeat is the worker's. */
    s->w->slot[k].ready = 0;
    s->w->slot[k].beat_ms = c->started_ms;
    pid_t pid = fork();
    if (pid < 0) {
        int delay = sup_restart_delay(&c->early_deaths, 0);
        log_err("supervisor", "cannot start worker %d: fork: %s", k, strerror(errno));
        c->due_ms = hub_now_ms() + (delay < 0 ? SUP_BACKOFF_MAX_MS : delay);
        return;
    }
    if (pid == 0) {
        /* A worker ends with the supervisor, even when that one is killed. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != s->self)
            _exit(1);
        /* Until the worker's loop installs its reload handler (main.c), a
         * SIGHUP would kill it by default. */
        signal(SIGHUP, SIG_IGN);
        sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
        s->w->slot[k].pid = getpid();
        exit(s->fn(k, s->w, s->ud));
    }
    c->pid = pid;
    s->w->slot[k].pid = pid;
    s->w->slot[k].started_s = hub_wall_s();
    log_info("supervisor", "worker %d started (pid %d)", k, (int)pid);
}

/* Sends sig to every running worker. */
static void
sup_signal_all(struct sup *s, int sig)
{
    for (int k = 0; k < s->n; k++)
        if (s->child[k].pid)
            kill(s->child[k].pid, sig);
}

/* Stops every worker with sig (SIGTERM after giving up): no more restarts. */
static void
sup_stop(struct sup *s, int sig, int shutdown_timeout_ms)
{
    if (!s->stopping) {
        s->kill_at_ms = hub_now_ms() + shutdown_timeout_ms + SUP_STOP_GRACE_MS;
        notify_send("STOPPING=1");
    }
    s->stopping = 1;
    for (int k = 0; k < s->n; k++)
        s->child[k].due_ms = 0;
    sup_signal_all(s, sig);
}

/* Reaps every worker that has exited and decides about each. */
static void
sup_reap(struct sup *s, int shutdown_timeout_ms)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int k = 0;
        while (k < s->n && s->child[k].pid != pid)
            k++;
        if (k == s->n)
            continue; /* not one of ours */
        struct sup_child *c = &s->child[k];
        c->pid = 0;
        workers_retire(s->w, k);
        int64_t lived = hub_now_ms() - c->started_ms;
        char how[64];
        if (WIFSIGNALED(status))
            snprintf(how, sizeof(how), "was killed by signal %d (%s)", WTERMSIG(status),
                     strsignal(WTERMSIG(status)));
        else
            snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
        if (!s->stopping && WIFEXITED(status) && WEXITSTATUS(status) == 2) {
            /* The worker refused the configuration (as a lone hub exits 2):
             * every restart would do the same. */
            log_err("supervisor", "worker %d (pid %d) refused the configuration: stopping", k,
                    (int)pid);
            s->rc = 2;
            sup_stop(s, SIGTERM, shutdown_timeout_ms);
            continue;
        }
        if (s->stopping) {
            log_info("supervisor", "worker %d (pid %d) %s", k, (int)pid, how);
            if ((!WIFEXITED(status) || WEXITSTATUS(status)) && !s->rc)
                s->rc = 1;
            continue;
        }
        int delay = sup_restart_delay(&c->early_deaths, lived);
        if (delay < 0) {
            log_err("supervisor",
                    "worker %d (pid %d) %s %lld ms after its start, %d times in a row: giving "
                    "up, stopping the other workers",
                    k, (int)pid, how, (long long)lived, SUP_EARLY_DEATHS_MAX);
            s->rc = 1;
            sup_stop(s, SIGTERM, shutdown_timeout_ms);
            continue;
        }
        log_warn("supervisor", "worker %d (pid %d) %s after %lld ms; restarting it in %d ms", k,
                 (int)pid, how, (long long)lived, delay);
        c->due_ms = hub_now_ms() + delay;
    }
}

/* Workers still running. */
static int
sup_running(const struct sup *s)
{
    int n = 0;
    for (int k = 0; k < s->n; k++)
        n += s->child[k].pid != 0;
    return n;
}

/* Whether every worker is running and has said it is ready. */
static int
sup_all_ready(const struct sup *s)
{
    for (int k = 0; k < s->n; k++)
        if (!s->child[k].pid || !__atomic_load_n(&s->w->slot[k].ready, __ATOMIC_RELAXED))
            return 0;
    return 1;
}

/*
 * Whether every running worker's loop has turned within the watchdog
 * interval (a worker waiting to be restarted is the supervisor's business,
 * not a stuck loop). Logs a worker that is seen stuck, once per stall.
 */
static int
sup_loops_alive(struct sup *s, int64_t now)
{
    int alive = 1;
    for (int k = 0; k < s->n; k++) {
        struct sup_child *c = &s->child[k];
        if (!c->pid)
            continue;
        int64_t age = now - __atomic_load_n(&s->w->slot[k].beat_ms, __ATOMIC_RELAXED);
        if (age <= s->wd_ms) {
            c->stalled = 0;
            continue;
        }
        alive = 0;
        if (!c->stalled)
            log_warn("supervisor",
                     "worker %d (pid %d) has not turned its loop for %lld ms: no more watchdog "
                     "pings until it does",
                     k, (int)c->pid, (long long)age);
        c->stalled = 1;
    }
    return alive;
}

/*
 * Speaks for the workers to the service manager (notify.h): READY=1 once
 * all of them are ready, WATCHDOG=1 every half interval while all their
 * loops turn.
 */
static void
sup_notify(struct sup *s, int64_t now)
{
    if (!s->announced && !s->stopping && sup_all_ready(s)) {
        char msg[64];
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%d workers ready", s->n);
        notify_send(msg);
        s->announced = 1;
    }
    if (s->wd_ms && now >= s->ping_at_ms) {
        if (sup_loops_alive(s, now))
            notify_send("WATCHDOG=1");
        s->ping_at_ms = now + s->wd_ms / 2;
    }
}

/* The earliest deadline to wake up for, 0 when there is none. */
static int64_t
sup_next_deadline(const struct sup *s)
{
    int64_t next = s->stopping ? s->kill_at_ms : 0;
    for (int k = 0; k < s->n; k++)
        if (s->child[k].due_ms && (!next || s->child[k].due_ms < next))
            next = s->child[k].due_ms;
    if (s->wd_ms && (!next || s->ping_at_ms < next))
        next = s->ping_at_ms;
    /* Readiness is in the workers' slots: looked at until all are ready. */
    int64_t ready_check = hub_now_ms() + SUP_READY_POLL_MS;
    if (notify_enabled() && !s->announced && !s->stopping && (!next || ready_check < next))
        next = ready_check;
    return next;
}

int
supervisor_run(int n, int shutdown_timeout_ms, sup_worker_fn fn, void *ud)
{
    struct sup s;
    memset(&s, 0, sizeof(s));
    s.n = n;
    s.fn = fn;
    s.ud = ud;
    s.self = getpid();
    s.wd_ms = notify_watchdog_ms();
    s.ping_at_ms = hub_now_ms();
    s.w = workers_map(n);
    if (!s.w)
        return 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &s.old_mask);
    signal(SIGPIPE, SIG_IGN); /* a closed stderr must not end the supervisor */
    log_info("supervisor", "starting %d workers", n);
    for (int k = 0; k < n; k++)
        sup_spawn(&s, k);

    while (!s.stopping || sup_running(&s)) {
        int64_t next = sup_next_deadline(&s), now = hub_now_ms();
        siginfo_t info;
        int sig;
        if (next) {
            int64_t wait_ms = next > now ? next - now : 0;
            struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000};
            sig = sigtimedwait(&set, &info, &ts);
        } else {
            sig = sigwaitinfo(&set, &info);
        }
        if (sig == SIGTERM || sig == SIGINT) {
            if (!s.stopping)
                log_info("supervisor", "stopping (signal %d): passing it to %d workers", sig,
                         sup_running(&s));
            sup_stop(&s, sig, shutdown_timeout_ms);
        } else if (sig == SIGHUP) {
            sup_signal_all(&s, SIGHUP);
        }
        sup_reap(&s, shutdown_timeout_ms);
        now = hub_now_ms();
        if (s.stopping && now >= s.kill_at_ms && sup_running(&s)) {
            log_err("supervisor", "%d workers still running %d ms after the stop: killing them",
                    sup_running(&s), shutdown_timeout_ms + SUP_STOP_GRACE_MS);
            sup_signal_all(&s, SIGKILL);
            s.rc = 1;
            s.kill_at_ms = now + SUP_STOP_GRACE_MS; /* reaped by the next SIGCHLD */
        }
        for (int k = 0; k < n && !s.stopping; k++) {
            if (s.child[k].due_ms && now >= s.child[k].due_ms) {
                s.w->slot[k].restarts++;
                sup_spawn(&s, k);
            }
        }
        sup_notify(&s, now);
    }
    log_info("supervisor", "all workers have exited");
    workers_unmap(s.w);
    sigprocmask(SIG_SETMASK, &s.old_mask, NULL);
    return s.rc;
}
