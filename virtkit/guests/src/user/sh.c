/*
 * sh: a tiny shell, so that a student can type into the guest's console.
 *
 * Shows the life of a process from the outside: each command line is read with read(2)
 * from the console, split at blanks, and either run as a builtin or as a program of the
 * kernel's built-in table with the classic fork + execve + wait4 (Ritchie and Thompson,
 * "The UNIX time-sharing system", 1974, section 6). A program that ends with a non-zero
 * status, or is killed by a signal, is reported. Builtins:
 *   echo [word...]     prints its arguments
 *   ps                 lists the processes (SYS_tinyos_ps)
 *   uname [-a]         the kernel's name, or everything SYS_uname says
 *   exit [code]        ends the shell (and with it the system, when the shell is init)
 *   help               lists the builtins
 * The prompt is "$ ". The kernel's console does the line editing (it echoes what is
 * typed, erases with backspace, and hands over a whole line at Enter), so the shell
 * only reads lines. End of input (Ctrl-D on an empty line: read returns 0) ends the
 * shell with status 0.
 */
#include "ulib.h"

#define LINE_MAX 128
#define ARGS_MAX 16
#define PS_MAX TINYOS_MAX_PROCS

static const char *const state_names[] = {
    [PROC_RUNNABLE] = "runnable",
    [PROC_RUNNING] = "running",
    [PROC_SLEEPING] = "sleeping",
    [PROC_ZOMBIE] = "zombie",
};

/* The signals the kernel kills with (abi.h). */
static const char *signal_name(int signal)
{
    switch (signal) {
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    default: return "an unknown signal";
    }
}

/* One line into `line` (NUL-terminated, without its newline): its length; -1 at the end
   of input; LINE_TOO_LONG for a line of LINE_MAX characters or more, whose rest is
   read and dropped. */
#define LINE_TOO_LONG (-2)
static int read_line(char *line)
{
    int length = 0, too_long = 0;
    for (;;) {
        char chunk[LINE_MAX];
        long got = read(STDIN, chunk, sizeof chunk);
        if (got <= 0) {
            if (length == 0 && !too_long)
                return -1;
            break;              /* Ctrl-D after some text: take it as a line */
        }
        int end = 0;
        for (long i = 0; i < got && !end; i++) {
            if (chunk[i] == '\n')
                end = 1;
            else if (length < LINE_MAX - 1)
                line[length++] = chunk[i];
            else
                too_long = 1;
        }
        if (end)
            break;
    }
    line[length] = '\0';
    return too_long ? LINE_TOO_LONG : length;
}

/* Splits `line` in place at blanks into argv; returns argc (-1 if too many words). */
static int split(char *line, char **argv)
{
    int argc = 0;
    for (char *p = line;;) {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (argc == ARGS_MAX)
            return -1;
        argv[argc++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
    }
    argv[argc] = NULL;
    return argc;
}

static int builtin_echo(int argc, char **argv)
{
    char text[LINE_MAX + 1];
    int length = 0;
    for (int i = 1; i < argc; i++)
        length += snprintf(text + length, sizeof text - length, i > 1 ? " %s" : "%s", argv[i]);
    printf("%s\n", text);
    return 0;
}

static int builtin_ps(void)
{
    static struct tinyos_proc_info procs[PS_MAX];
    int count = tinyos_ps(procs, PS_MAX);
    if (count < 0) {
        printf("ps: %s\n", errno_name(count));
        return 1;
    }
    printf("  PID  PPID STATE     NAME\n");
    for (int i = 0; i < count && i < PS_MAX; i++) {
        int state = procs[i].state;
        const char *name = state >= PROC_RUNNABLE && state <= PROC_ZOMBIE ? state_names[state]
                                                                           : "?";
        procs[i].name[sizeof procs[i].name - 1] = '\0';
        printf("%5d %5d %-9s %s\n", procs[i].pid, procs[i].ppid, name, procs[i].name);
    }
    return 0;
}

static int builtin_uname(int argc, char **argv)
{
    static struct utsname names;
    int result = uname(&names);
    if (result < 0) {
        printf("uname: %s\n", errno_name(result));
        return 1;
    }
    if (argc == 1) {
        printf("%s\n", names.sysname);
    } else if (argc == 2 && strcmp(argv[1], "-a") == 0) {
        printf("%s %s %s %s %s\n", names.sysname, names.nodename, names.release,
               names.version, names.machine);
    } else {
        printf("uname: usage: uname [-a]\n");
        return 2;
    }
    return 0;
}

/* fork, execve in the child, wait4 in the parent; reports how the program ended. */
static int run_program(char **argv)
{
    pid_t child = fork();
    if (child < 0) {
        printf("sh: fork: %s\n", errno_name(child));
        return 1;
    }
    if (child == 0) {
        char *const envp[] = {NULL};
        int error = execve(argv[0], argv, envp);
        if (error == -ENOENT)
            printf("sh: %s: no such program\n", argv[0]);
        else
            printf("sh: %s: execve: %s\n", argv[0], errno_name(error));
        exit(127);              /* the status POSIX shells give "command not found" */
    }
    int status = 0;
    pid_t reaped = wait4(child, &status, 0, NULL);
    if (reaped != child) {
        printf("sh: wait4: %s\n", errno_name(reaped));
        return 1;
    }
    if (WIFSIGNALED(status)) {
        printf("sh: %s: killed by signal %d (%s)\n", argv[0], WTERMSIG(status),
               signal_name(WTERMSIG(status)));
        return 128 + WTERMSIG(status);
    }
    if (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 127)
        printf("sh: %s: exit status %d\n", argv[0], WEXITSTATUS(status));
    return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        eprintf("sh: unknown argument '%s' (usage: sh)\n", argv[1]);
        return 2;
    }
    char line[LINE_MAX];
    char *words[ARGS_MAX + 1];
    for (;;) {
        write(STDOUT, "$ ", 2);
        int length = read_line(line);
        if (length == LINE_TOO_LONG) {
            printf("sh: line longer than %d characters: ignored\n", LINE_MAX - 1);
            continue;
        }
        if (length < 0)
            return 0;
        int count = split(line, words);
        if (count < 0) {
            printf("sh: more than %d words\n", ARGS_MAX);
            continue;
        }
        if (count == 0)
            continue;
        if (strcmp(words[0], "exit") == 0) {
            unsigned code = 0;
            if (count > 2 || (count == 2 && (parse_number(words[1], &code) != 0 || code > 255))) {
                printf("sh: usage: exit [0..255]\n");
                continue;
            }
            return (int)code;
        }
        if (strcmp(words[0], "echo") == 0)
            builtin_echo(count, words);
        else if (strcmp(words[0], "ps") == 0)
            builtin_ps();
        else if (strcmp(words[0], "uname") == 0)
            builtin_uname(count, words);
        else if (strcmp(words[0], "help") == 0)
            printf("builtins: echo [word...], ps, uname [-a], exit [code], help; "
                   "anything else runs a program: <name> [n=<N>]\n");
        else
            run_program(words);
    }
}
