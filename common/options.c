/*-------------------------------------------------------------------------
 *
 * options.c
 *	  option tables: typed settings with defaults, bound to a struct
 *
 * Every daemon describes its settings once, as a table of tk_option
 * (pgbouncer's CF_ABS table): name, type, offset into its config struct,
 * default, bounds and help.  The same table parses the defaults, config
 * file lines, environment and command-line values (all text, through
 * tk_options_set), frees the strings, prints --help and --show-config.
 * Several tables can describe one daemon (daemon_config.c: the settings
 * every daemon shares, then the daemon's own, then a consumer service's).
 *
 * Errors name the setting and the value and say what was expected; the
 * value of a TK_OPT_SECRET setting is never echoed, and a TK_OPT_CONNINFO
 * is printed without its password (tk_conninfo_display).
 *
 * IDENTIFICATION
 *	  common/options.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "config.h"
#include "log.h"
#include "options.h"

static void *
opt_ptr(const tk_option *o, const void *base)
{
	return (char *) base + o->offset;
}

static bool
opt_is_string(const tk_option *o)
{
	return o->type == TK_OPT_STRING || o->type == TK_OPT_PROFILE ||
		o->type == TK_OPT_CONNINFO || o->type == TK_OPT_SECRET;
}

const tk_option *
tk_options_find(const tk_option *opts, const char *name)
{
	for (const tk_option *o = opts; o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

/*
 * Parse value into the setting.  Returns NULL on success, else a message
 * (static or written into errbuf).
 */
const char *
tk_options_set(const tk_option *o, void *base, const char *value,
			   char *errbuf, size_t errlen)
{
	void	   *p = opt_ptr(o, base);
	long		v;
	bool		b;
	tk_log_level l;

	switch (o->type)
	{
		case TK_OPT_PROFILE:
			if (strcmp(value, "development") != 0 && strcmp(value, "production") != 0)
			{
				snprintf(errbuf, errlen,
						 "invalid value for \"%s\": \"%s\" (expected development or production)",
						 o->name, value);
				return errbuf;
			}
			/* FALLTHROUGH */
		case TK_OPT_STRING:
		case TK_OPT_CONNINFO:
		case TK_OPT_SECRET:
			free(*(char **) p);
			*(char **) p = strdup(value);
			return *(char **) p ? NULL : "out of memory";
		case TK_OPT_INT:
			if (!tk_config_parse_int(value, o->min, o->max, &v))
			{
				snprintf(errbuf, errlen,
						 "invalid value for \"%s\": \"%s\" (expected an integer from %ld to %ld)",
						 o->name, value, o->min, o->max);
				return errbuf;
			}
			*(int *) p = (int) v;
			return NULL;
		case TK_OPT_BOOL:
			if (!tk_config_parse_bool(value, &b))
			{
				snprintf(errbuf, errlen, "invalid value for \"%s\": \"%s\" (expected true or false)",
						 o->name, value);
				return errbuf;
			}
			*(bool *) p = b;
			return NULL;
		case TK_OPT_LOGLEVEL:
			if (!tk_log_parse_level(value, &l))
			{
				snprintf(errbuf, errlen,
						 "invalid value for \"%s\": \"%s\" (expected debug, info, warning or error)",
						 o->name, value);
				return errbuf;
			}
			*(tk_log_level *) p = l;
			return NULL;
	}
	return "internal error: unknown option type";
}

bool
tk_options_defaults(const tk_option *opts, void *base, char *errbuf, size_t errlen)
{
	char		err[256];

	for (const tk_option *o = opts; o->name; o++)
	{
		if (tk_options_set(o, base, o->def, err, sizeof(err)) != NULL)
		{
			snprintf(errbuf, errlen, "bad default for %s: %s", o->name, err);
			return false;
		}
	}
	return true;
}

void
tk_options_free(const tk_option *opts, void *base)
{
	for (const tk_option *o = opts; o->name; o++)
	{
		if (opt_is_string(o))
		{
			free(*(char **) opt_ptr(o, base));
			*(char **) opt_ptr(o, base) = NULL;
		}
	}
}

void
tk_options_print(const tk_option *opts, const void *base, FILE *out)
{
	for (const tk_option *o = opts; o->name; o++)
	{
		void	   *p = opt_ptr(o, base);

		switch (o->type)
		{
			case TK_OPT_STRING:
			case TK_OPT_PROFILE:
				fprintf(out, "%s = %s\n", o->name, *(char **) p ? *(char **) p : "");
				break;
			case TK_OPT_CONNINFO:
				{
					char	   *d = tk_conninfo_display(*(char **) p ? *(char **) p : "");

					fprintf(out, "%s = %s\n", o->name, d ? d : "");
					free(d);
				}
				break;
			case TK_OPT_SECRET:
				fprintf(out, "%s = %s\n", o->name,
						*(char **) p && **(char **) p ? "[redacted]" : "");
				break;
			case TK_OPT_INT:
				fprintf(out, "%s = %d\n", o->name, *(int *) p);
				break;
			case TK_OPT_BOOL:
				fprintf(out, "%s = %s\n", o->name, *(bool *) p ? "true" : "false");
				break;
			case TK_OPT_LOGLEVEL:
				fprintf(out, "%s = %s\n", o->name, tk_log_level_name(*(tk_log_level *) p));
				break;
		}
	}
}

void
tk_options_usage(const tk_option *opts, FILE *out)
{
	for (const tk_option *o = opts; o->name; o++)
		fprintf(out, "  %-20s %-12s %s\n", o->name,
				o->def[0] ? o->def : "(none)", o->help);
}

/* conninfo without its password, for logs and --show-config */
char *
tk_conninfo_display(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	char	   *buf;
	size_t		len = 0;

	if (opts == NULL)
		return strdup("(unparsable conninfo)");
	buf = calloc(1, strlen(conninfo) + 64);
	if (buf == NULL)
	{
		PQconninfoFree(opts);
		return NULL;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (o->val == NULL || o->val[0] == '\0' || strcmp(o->keyword, "password") == 0)
			continue;
		len += sprintf(buf + len, "%s%s=%s", len ? " " : "", o->keyword,
					   strlen(o->val) > 64 ? "..." : o->val);
		if (len > strlen(conninfo) + 32)
			break;
	}
	PQconninfoFree(opts);
	return buf;
}
