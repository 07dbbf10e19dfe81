/* The names of pgwalk's error codes, for the messages of the fault path. */
#include "hv.h"

static const struct { int code; const char *name; } names[] = {
	{ PGW_EPERM, "-PGW_EPERM" },
	{ PGW_ENOENT, "-PGW_ENOENT" },
	{ PGW_EAGAIN, "-PGW_EAGAIN" },
	{ PGW_ENOMEM, "-PGW_ENOMEM" },
	{ PGW_EFAULT, "-PGW_EFAULT" },
	{ PGW_EEXIST, "-PGW_EEXIST" },
	{ PGW_EINVAL, "-PGW_EINVAL" },
	{ PGW_ERANGE, "-PGW_ERANGE" },
	{ PGW_EDEADLK, "-PGW_EDEADLK" },
	{ PGW_ELOOP, "-PGW_ELOOP" },
	{ PGW_EPROTO, "-PGW_EPROTO" },
	{ PGW_EBADMSG, "-PGW_EBADMSG" },
	{ PGW_EOPNOTSUPP, "-PGW_EOPNOTSUPP" },
	{ PGW_ENOTRECOVERABLE, "-PGW_ENOTRECOVERABLE" },
};

const char *pgw_errno_name(int err)
{
	if (err == 0)
		return "0";
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (-names[i].code == err)
			return names[i].name;
	return NULL;
}

const char *errno_str(int err)
{
	const char *n = pgw_errno_name(err);

	return n ? n : "an unknown error code";
}
