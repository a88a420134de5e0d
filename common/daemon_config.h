/*-------------------------------------------------------------------------
 *
 * daemon_config.h
 *	  command line, environment and config file of every todo_kafka daemon
 *
 * IDENTIFICATION
 *	  common/daemon_config.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_DAEMON_CONFIG_H
#define TK_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "kafka_conf.h"
#include "log.h"
#include "options.h"

/* exit codes of every daemon */
#define TK_EXIT_OK			0
#define TK_EXIT_FAILURE		1
#define TK_EXIT_USAGE		2

#define TK_DAEMON_MAX_TABLES 3

/* the settings every daemon has (tk_daemon_options) */
typedef struct tk_daemon_config
{
	char	   *conninfo;
	char	   *brokers;
	char	   *metrics_listen;
	char	   *otlp_endpoint;	/* OTLP/HTTP base URL; empty: no spans */
	char	   *profile;		/* "development" or "production" */
	tk_log_level log_level;
	char	   *config_file;	/* not a setting: -c */
	tk_kvlist	kafka;			/* librdkafka properties, in order */
} tk_daemon_config;

/*
 * A long option of one daemon.  With has_arg it sets the setting named key
 * to its argument; without, it sets key to "true".  usage is the line shown
 * by --help, e.g. "--reminder-grace=SECS  late reminders fire as missed".
 */
typedef struct tk_cli_option
{
	const char *name;
	const char *key;
	bool		has_arg;
	const char *usage;
} tk_cli_option;

/* what a daemon is: its name, its settings and its options */
typedef struct tk_daemon_spec
{
	const char *program;		/* "todo-kafka-relay" */
	const char *summary;		/* first line of --help */
	const char *version;
	const tk_option *tables[TK_DAEMON_MAX_TABLES];	/* its own settings */
	const char *const (*kafka_defaults)[2];	/* {NULL, NULL} terminated */
	const tk_cli_option *cli_options;	/* {NULL} terminated, or NULL */
	const char *notes;			/* extra --help text, or NULL */
} tk_daemon_spec;

/* what came from the command line: reapplied on every (re)load */
typedef struct tk_cli
{
	const char *config_file;
	bool		show_config;
	tk_kvlist	settings;		/* setting name -> value */
	tk_kvlist	kafka;			/* -X */
} tk_cli;

extern const tk_option tk_daemon_options[];

extern int	tk_cli_parse(const tk_daemon_spec *spec, int argc, char **argv,
						 tk_cli *cli);
extern void tk_cli_free(tk_cli *cli);
extern bool tk_daemon_config_load(const tk_daemon_spec *spec, const tk_cli *cli,
								  tk_daemon_config *base, void *const *own,
								  char *errbuf, size_t errlen);
extern void tk_daemon_config_free(const tk_daemon_spec *spec,
								  tk_daemon_config *base, void *const *own);
extern void tk_daemon_config_print(const tk_daemon_spec *spec,
								   const tk_daemon_config *base,
								   void *const *own, FILE *out);
extern void tk_daemon_log_start(const tk_daemon_spec *spec,
								const tk_daemon_config *base);

#endif							/* TK_DAEMON_CONFIG_H */
