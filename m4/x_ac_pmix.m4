# X_AC_PMIX: optional PMIx (pmix.pc; Debian puts headers under pmix2/).
AC_DEFUN([X_AC_PMIX], [
    AC_ARG_WITH([pmix],
        [AS_HELP_STRING([--with-pmix], [use PMIx for node identity and the ready fence (default: if found)])],
        [], [with_pmix=check])
    x_ac_have_pmix=no
    AS_IF([test "x$with_pmix" != xno], [
        PKG_CHECK_MODULES([PMIX], [pmix], [x_ac_have_pmix=yes], [x_ac_have_pmix=no])
        AS_IF([test "x$x_ac_have_pmix" = xno && test "x$with_pmix" = xyes],
            [AC_MSG_ERROR([--with-pmix given but PMIx was not found (Debian: libpmix-dev)])])
    ])
    AS_IF([test "x$x_ac_have_pmix" = xyes],
        [AC_DEFINE([HAVE_PMIX], [1], [Define if PMIx is available])])
    AC_SUBST([PMIX_CFLAGS])
    AC_SUBST([PMIX_LIBS])
    AM_CONDITIONAL([HAVE_PMIX], [test "x$x_ac_have_pmix" = xyes])
])
