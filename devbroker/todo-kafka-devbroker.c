/*-------------------------------------------------------------------------
 *
 * todo-kafka-devbroker.c
 *	  a development Kafka cluster around librdkafka's mock cluster
 *
 * Starts librdkafka's in-process mock cluster (rdkafka_mock.h): N brokers
 * speaking the real Kafka protocol on loopback TCP, the project's topics
 * pre-created, for development and the end-to-end tests (which also inject
 * faults through it).  Any Kafka client can use it.
 *
 * Protocol with the caller:
 *	- the FIRST stdout line is bootstrap.servers, flushed once the cluster
 *	  and topics exist (with -o, also written atomically to a file);
 *	- then stdout carries only answers to control commands, one line each
 *	  ("ok ..." / "error: ..."; command.c); stderr is the log (common/log.c);
 *	- commands come from stdin and the optional --control FIFO (input.c);
 *	  EOF on stdin does not stop it: SIGTERM/SIGINT exit 0, a second exits
 *	  at once.
 *
 * The cluster belongs to a never-used producer handle; destroying the
 * handle destroys it.  The mock runs its own thread; the main loop only
 * polls the command sources every 100 ms and checks the signal flags.
 * Mock limits (see command.c): at most 5 MiB / 100,000 batches per
 * partition, oldest dropped; no CreateTopics; auto-created topics get the
 * mock's partition count, so name yours with -t or "topic".  The mock has
 * no SASL or TLS: --sasl-ssl puts a SASL_SSL front before each broker
 * (sasl_front.c) and the bootstrap line names the fronts instead.
 *
 * IDENTIFICATION
 *	  devbroker/todo-kafka-devbroker.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devbroker.h"

#define PROGNAME				"todo-kafka-devbroker"
#define DEFAULT_BROKERS			3
#define DEFAULT_PARTITIONS		3
#define MAX_TOPICS				256
#define POLL_INTERVAL_MS		100

static const char *const default_topics[] = {
	"todo.task.events",
	"todo.task.updates",
	"todo.audit.log",
	"todo.reminders",
	"todo.notifications",
	"todo.dead.letter",
};

typedef struct topic_spec
{
	char	   *name;
	int			partitions;		/* 0: use the -p default */
} topic_spec;


static void
usage(FILE *out)
{
	fprintf(out,
			"%s runs a development Kafka cluster (librdkafka's mock cluster)\n"
			"on loopback ports, with topics pre-created, until SIGTERM or SIGINT.\n"
			"\n"
			"Usage:\n"
			"  %s [OPTION]...\n"
			"\n"
			"Options:\n"
			"  -n, --brokers=N          number of brokers, 1 to %d (default %d)\n"
			"  -t, --topic=NAME[:P]     create topic NAME with P partitions (repeatable;\n"
			"                           default P is -p). Without -t: todo.task.events,\n"
			"                           todo.task.updates, todo.audit.log, todo.reminders,\n"
			"                           todo.notifications, todo.dead.letter\n"
			"  -p, --partitions=P       default partition count, 1 to %d (default %d)\n"
			"  -o, --output=FILE        also write the bootstrap.servers line to FILE\n"
			"                           (atomically: temporary file, then rename)\n"
			"      --control=FIFO       read control commands from FIFO too (created\n"
			"                           if missing, reopened when a writer closes it)\n"
			"      --sasl-ssl=CERT,KEY  serve clients SASL_SSL only: a TLS listener with\n"
			"                           this PEM certificate (chain) and key before each\n"
			"                           broker, SASL mechanism SCRAM-SHA-512; the\n"
			"                           bootstrap line then names these listeners\n"
			"      --scram-user=NAME:PASSWORD  a SCRAM-SHA-512 user (repeatable; needs\n"
			"                           --sasl-ssl); or NAME:@FILE, the password being\n"
			"                           FILE's first line\n"
			"  -h, --help               show this help, then exit\n"
			"\n"
			"Output: the first line on stdout is bootstrap.servers (host:port,...);\n"
			"later lines on stdout answer control commands; the log goes to stderr.\n"
			"\n"
			"%s"
			"\n"
			"Examples:\n"
			"  %s -n 3 -t orders:6 -o /tmp/bootstrap --control /tmp/devbroker.ctl &\n"
			"  kcat -b \"$(cat /tmp/bootstrap)\" -P -t orders <<< 'hello'\n"
			"  echo 'down all' > /tmp/devbroker.ctl\n",
			PROGNAME, PROGNAME, DEVBROKER_MAX_BROKERS, DEFAULT_BROKERS,
			DEVBROKER_MAX_PARTITIONS, DEFAULT_PARTITIONS,
			devbroker_command_help(), PROGNAME);
}

/* Report a command-line mistake and exit 2, as usage errors do. */
static void
usage_error(const char *fmt,...)
			__attribute__((format(printf, 1, 2), noreturn));

static void
usage_error(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", PROGNAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"%s --help\" for more information.\n", PROGNAME);
	exit(2);
}

static int
parse_count(const char *arg, const char *what, int max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 1 || v > max)
		usage_error("invalid %s \"%s\": use a whole number from 1 to %d",
					what, arg, max);
	return (int) v;
}

/* -t NAME[:PARTITIONS] */
static void
parse_topic_arg(const char *arg, topic_spec *spec)
{
	const char *colon = strrchr(arg, ':');
	size_t		len = colon ? (size_t) (colon - arg) : strlen(arg);

	if (len == 0)
		usage_error("invalid topic \"%s\": expected NAME or NAME:PARTITIONS", arg);
	spec->name = strndup(arg, len);
	if (spec->name == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", PROGNAME);
		exit(1);
	}
	if (!devbroker_valid_topic_name(spec->name))
		usage_error("invalid topic name \"%s\": use 1 to 249 of the characters a-z A-Z 0-9 . _ -",
					spec->name);
	spec->partitions = colon
		? parse_count(colon + 1, "partition count in -t", DEVBROKER_MAX_PARTITIONS)
		: 0;
}

/*
 * librdkafka log callback: called from librdkafka's threads.  tk_log
 * writes each line with one write(), so this is safe.
 */
static void
rdkafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
			   const char *buf)
{
	/* the handle owning the mock cluster has no bootstrap.servers on purpose */
	if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "bootstrap.servers") != NULL)
		return;
	tk_kafka_log_cb(rk, level, fac, buf);
}

/* Write "line\n" to "path" atomically: temporary file + rename. */
static int
write_file_atomically(const char *path, const char *line)
{
	char		tmp[4096];
	FILE	   *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long) getpid())
		>= (int) sizeof(tmp))
	{
		tk_log(TK_LOG_ERROR, "output path \"%s\" is too long", path);
		return -1;
	}
	f = fopen(tmp, "w");
	if (f == NULL)
	{
		tk_log(TK_LOG_ERROR, "could not create \"%s\": %s", tmp, strerror(errno));
		return -1;
	}
	if (fprintf(f, "%s\n", line) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
	{
		tk_log(TK_LOG_ERROR, "could not write \"%s\": %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0)
	{
		tk_log(TK_LOG_ERROR, "could not write \"%s\": %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/*
 * --scram-user NAME:PASSWORD or NAME:@FILE (the password: FILE's first
 * line, so that it is not on the command line).  The password is wiped
 * from argv once scram.c has derived the keys.
 */
static void
add_scram_user(char *arg)
{
	char		err[256];
	char		spec[1280];
	char	   *colon = strchr(arg, ':');

	if (colon != NULL && colon[1] == '@')
	{
		FILE	   *f = fopen(colon + 2, "r");
		size_t		n = (size_t) (colon - arg) + 1;

		if (f == NULL)
			usage_error("--scram-user: could not open \"%s\": %s", colon + 2, strerror(errno));
		if (n >= 256)
			usage_error("--scram-user: user name too long");
		memcpy(spec, arg, n);
		if (fgets(spec + n, (int) (sizeof(spec) - n), f) == NULL)
			spec[n] = '\0';
		fclose(f);
		spec[strcspn(spec, "\r\n")] = '\0';
		arg = spec;
	}
	if (scram_add_user(arg, err, sizeof(err)) != 0)
		usage_error("%s", err);
}

/* Called by line_source_read for each command line. */
static void
handle_command_line(const char *line, void *arg)
{
	devbroker_state *st = arg;
	char		ans[1024];

	if (line == NULL)
		snprintf(ans, sizeof(ans), "error: command line too long (max %d bytes)",
				 DEVBROKER_LINE_MAX - 1);
	else
	{
		devbroker_execute(st, line, ans, sizeof(ans));
		if (ans[0] == '\0')
			return;				/* blank or comment line */
		tk_log(TK_LOG_INFO, "command \"%s\": %s", line, ans);
	}
	/* answers go to stdout, one line each; a gone reader is not an error */
	printf("%s\n", ans);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"brokers", required_argument, NULL, 'n'},
		{"topic", required_argument, NULL, 't'},
		{"partitions", required_argument, NULL, 'p'},
		{"output", required_argument, NULL, 'o'},
		{"control", required_argument, NULL, 'C'},
		{"sasl-ssl", required_argument, NULL, 'S'},
		{"scram-user", required_argument, NULL, 'U'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	topic_spec	topics[MAX_TOPICS];
	int			ntopics = 0;
	int			default_partitions = DEFAULT_PARTITIONS;
	const char *output_path = NULL;
	const char *control_path = NULL;
	char	   *sasl_ssl = NULL;
	char	   *front_bootstrap = NULL;
	const char *bootstrap;
	bool		control_created = false;
	devbroker_state st;
	rd_kafka_conf_t *conf;
	char		errstr[512];
	line_source sources[2];
	int			nsources = 0;
	int			c;
	int			i;
	int			rc = 1;

	memset(&st, 0, sizeof(st));
	st.broker_cnt = DEFAULT_BROKERS;

	opterr = 0;					/* we word the errors ourselves */
	while ((c = getopt_long(argc, argv, ":n:t:p:o:h", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'n':
				st.broker_cnt = parse_count(optarg, "broker count (-n)",
											DEVBROKER_MAX_BROKERS);
				break;
			case 't':
				if (ntopics == MAX_TOPICS)
					usage_error("too many topics (-t): at most %d; create more with the \"topic\" command",
								MAX_TOPICS);
				parse_topic_arg(optarg, &topics[ntopics++]);
				break;
			case 'p':
				default_partitions = parse_count(optarg,
												 "default partition count (-p)",
												 DEVBROKER_MAX_PARTITIONS);
				break;
			case 'o':
				output_path = optarg;
				break;
			case 'C':
				control_path = optarg;
				break;
			case 'S':
				sasl_ssl = optarg;
				break;
			case 'U':
				add_scram_user(optarg);
				break;
			case 'h':
				usage(stdout);
				return 0;
			case ':':
				usage_error("option \"%s\" needs a value", argv[optind - 1]);
			default:
				if (optopt)
					usage_error("unknown option \"-%c\"", optopt);
				usage_error("unknown option \"%s\"", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument \"%s\": topics are given with -t NAME[:PARTITIONS]",
					argv[optind]);
	if (output_path != NULL && output_path[0] == '\0')
		usage_error("empty file name for -o");
	if (control_path != NULL && control_path[0] == '\0')
		usage_error("empty FIFO path for --control");

	if (sasl_ssl != NULL)
	{
		char	   *comma = strchr(sasl_ssl, ',');

		if (comma == NULL || comma == sasl_ssl || comma[1] == '\0')
			usage_error("invalid --sasl-ssl \"%s\": expected CERT,KEY (PEM files)", sasl_ssl);
		*comma = '\0';
		if (scram_user_count() == 0)
			usage_error("--sasl-ssl needs at least one --scram-user NAME:PASSWORD");
	}
	else if (scram_user_count() > 0)
		usage_error("--scram-user needs --sasl-ssl CERT,KEY");

	if (ntopics == 0)
	{
		for (i = 0; i < (int) (sizeof(default_topics) / sizeof(default_topics[0])); i++)
		{
			topics[ntopics].name = (char *) default_topics[i];
			topics[ntopics++].partitions = 0;
		}
	}

	/* a second SIGTERM/SIGINT while shutting down: exit now */
	tk_signals_install(true, 0);

	/* the handle that owns the mock cluster; it never produces anything */
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set_log_cb(conf, rdkafka_log_cb);
	st.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (st.rk == NULL)
	{
		tk_log(TK_LOG_ERROR, "could not create librdkafka handle: %s", errstr);
		return 1;
	}
	st.mcluster = rd_kafka_mock_cluster_new(st.rk, st.broker_cnt);
	if (st.mcluster == NULL)
	{
		tk_log(TK_LOG_ERROR, "could not create mock cluster with %d brokers",
			   st.broker_cnt);
		goto done;
	}
	st.bootstrap = rd_kafka_mock_cluster_bootstraps(st.mcluster);
	st.replication_factor = st.broker_cnt < 3 ? st.broker_cnt : 3;
	for (i = 1; i <= st.broker_cnt; i++)
		st.broker_up[i] = true;

	for (i = 0; i < ntopics; i++)
	{
		char		msg[512];
		int			partitions = topics[i].partitions ? topics[i].partitions
			: default_partitions;

		if (devbroker_create_topic(&st, topics[i].name, partitions,
								   msg, sizeof(msg)) != 0)
		{
			tk_log(TK_LOG_ERROR, "%s", msg);
			goto done;
		}
		tk_log(TK_LOG_INFO, "created %s", msg);
	}

	if (control_path != NULL)
	{
		if (line_source_open_fifo(&sources[nsources], control_path,
								  &control_created) != 0)
			goto done;
		nsources++;
	}
	line_source_init_fd(&sources[nsources++], "stdin", STDIN_FILENO);

	bootstrap = st.bootstrap;
	if (sasl_ssl != NULL)
	{
		if (sasl_front_start(st.bootstrap, sasl_ssl, sasl_ssl + strlen(sasl_ssl) + 1,
							 &front_bootstrap) != 0)
			goto done;
		bootstrap = front_bootstrap;
	}

	if (output_path != NULL &&
		write_file_atomically(output_path, bootstrap) != 0)
		goto done;

	printf("%s\n", bootstrap);
	fflush(stdout);
	tk_log(TK_LOG_INFO, "mock cluster ready: %d broker(s), %d topic(s), librdkafka %s, bootstrap.servers=%s%s",
		   st.broker_cnt, st.topic_cnt, rd_kafka_version_str(),
		   bootstrap, sasl_ssl ? " (SASL_SSL, SCRAM-SHA-512)" : "");

	while (!tk_shutdown_requested)
	{
		struct pollfd pfd[2];
		int			map[2];
		int			npfd = 0;
		int			n;

		if (tk_reload_requested)
		{
			tk_reload_requested = 0;
			tk_log(TK_LOG_INFO, "got SIGHUP, nothing to reload");
		}

		for (i = 0; i < nsources; i++)
		{
			if (sources[i].fd < 0)
				continue;
			pfd[npfd].fd = sources[i].fd;
			pfd[npfd].events = POLLIN;
			pfd[npfd].revents = 0;
			map[npfd++] = i;
		}

		n = poll(pfd, (nfds_t) npfd, POLL_INTERVAL_MS);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			tk_log(TK_LOG_ERROR, "poll failed: %s", strerror(errno));
			goto done;
		}
		for (i = 0; i < npfd && n > 0; i++)
		{
			if (pfd[i].revents != 0)
				line_source_read(&sources[map[i]], handle_command_line, &st);
		}
		rd_kafka_poll(st.rk, 0);
	}

	tk_log(TK_LOG_INFO, "got shutdown signal, stopping the mock cluster");
	rc = 0;

done:
	for (i = 0; i < nsources; i++)
		if (sources[i].fd >= 0 && sources[i].fd != STDIN_FILENO)
			close(sources[i].fd);
	if (control_created)
		unlink(control_path);
	if (st.mcluster != NULL)
		rd_kafka_mock_cluster_destroy(st.mcluster);
	rd_kafka_destroy(st.rk);
	free(front_bootstrap);
	if (rc == 0)
		tk_log(TK_LOG_INFO, "stopped");
	return rc;
}
