/*-------------------------------------------------------------------------
 *
 * options.h
 *	  option tables: typed settings with defaults, bound to a struct
 *
 * IDENTIFICATION
 *	  common/options.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_OPTIONS_H
#define TK_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum tk_opt_type
{
	TK_OPT_STRING,				/* char *, strdup'ed */
	TK_OPT_INT,					/* int, within [min, max] */
	TK_OPT_BOOL,				/* bool */
	TK_OPT_LOGLEVEL,			/* tk_log_level */
	TK_OPT_PROFILE,				/* char *: "development" or "production" */
	TK_OPT_CONNINFO,			/* char *: libpq conninfo, password hidden */
	TK_OPT_SECRET				/* char *: never printed */
} tk_opt_type;

/*
 * One setting: its name in config files (and, with '_' -> '-', usually on
 * the command line), where it lives in the bound struct, its default as
 * text (parsed like any other value) and one line of help.
 */
typedef struct tk_option
{
	const char *name;
	tk_opt_type type;
	size_t		offset;
	const char *def;
	long		min;
	long		max;
	const char *help;
} tk_option;

/* a table bound to the struct its offsets point into */
typedef struct tk_option_set
{
	const tk_option *opts;		/* terminated by {NULL} */
	void	   *base;
} tk_option_set;

extern const tk_option *tk_options_find(const tk_option *opts, const char *name);
extern const char *tk_options_set(const tk_option *o, void *base, const char *value,
								  char *errbuf, size_t errlen);
extern bool tk_options_defaults(const tk_option *opts, void *base,
								char *errbuf, size_t errlen);
extern void tk_options_free(const tk_option *opts, void *base);
extern void tk_options_print(const tk_option *opts, const void *base, FILE *out);
extern void tk_options_usage(const tk_option *opts, FILE *out);
extern char *tk_conninfo_display(const char *conninfo);

#endif							/* TK_OPTIONS_H */
