/*
 * pingpong.c — what one wake-up across loopback costs on this machine, for
 * the gateway benchmark (bench/gateway/run.sh).
 *
 * A proxy hop adds two trips through the loopback stack, and each trip
 * wakes a sleeping process.  How long a wake-up takes depends far more on
 * the machine than on any proxy: on one CPU the kernel switches straight to
 * the woken process; across CPUs it must interrupt the other one, and in a
 * virtual machine whose idle vCPU sits in HLT that is an exit to the
 * hypervisor and back.  This program measures both so that the report can
 * say which the benchmark's numbers are made of.
 *
 * Two processes, one TCP connection over 127.0.0.1 with TCP_NODELAY: the
 * parent writes one byte and blocks reading the answer; the child echoes
 * it.  Round trips run back to back; each is timed with CLOCK_MONOTONIC.
 *
 * Usage: pingpong ROUNDS CLIENT_CPU SERVER_CPU   (a CPU of -1: not pinned)
 * Prints "rounds=N p50_us=X p99_us=Y" for the round trip (two wake-ups).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void pin(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set)) {
		perror("pingpong: sched_setaffinity");
		exit(1);
	}
}

static void no_delay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The child: echoes every byte until the parent closes. */
static void echo(int listener, int cpu)
{
	pin(cpu);
	int c = accept(listener, NULL, NULL);
	if (c < 0)
		_exit(1);
	no_delay(c);
	char b;
	while (read(c, &b, 1) == 1)
		if (write(c, &b, 1) != 1)
			break;
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: pingpong ROUNDS CLIENT_CPU SERVER_CPU\n");
		return 2;
	}
	int rounds = atoi(argv[1]);
	if (rounds < 100)
		rounds = 100;
	struct sockaddr_in addr = {.sin_family = AF_INET,
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) ||
	    listen(listener, 1) || getsockname(listener, (struct sockaddr *)&addr, &len)) {
		perror("pingpong: listen");
		return 1;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("pingpong: fork");
		return 1;
	}
	if (child == 0)
		echo(listener, atoi(argv[3]));
	pin(atoi(argv[2]));
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
		perror("pingpong: connect");
		return 1;
	}
	no_delay(fd);
	double *rtt = malloc((size_t)rounds * sizeof *rtt);
	if (!rtt)
		return 1;
	char b = 'x';
	for (int i = 0; i < rounds; i++) {
		double t0 = now_us();
		if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1) {
			perror("pingpong: echo");
			return 1;
		}
		rtt[i] = now_us() - t0;
	}
	close(fd);
	waitpid(child, NULL, 0);
	qsort(rtt, (size_t)rounds, sizeof *rtt, by_value);
	printf("rounds=%d p50_us=%.1f p99_us=%.1f\n", rounds, rtt[rounds / 2],
	       rtt[(size_t)rounds * 99 / 100]);
	free(rtt);
	return 0;
}
