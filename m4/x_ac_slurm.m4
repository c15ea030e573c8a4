# X_AC_SLURM: optional libslurm (Debian ships no .pc file).
# --with-slurm: require it; --without-slurm: don't look.
AC_DEFUN([X_AC_SLURM], [
    AC_ARG_WITH([slurm],
        [AS_HELP_STRING([--with-slurm], [use libslurm to submit and query jobs (default: if found)])],
        [], [with_slurm=check])
    x_ac_have_slurm=no
    SLURM_LIBS=""
    AS_IF([test "x$with_slurm" != xno], [
        AC_CHECK_HEADER([slurm/slurm.h], [
            AC_CHECK_LIB([slurm], [slurm_init], [
                x_ac_have_slurm=yes
                SLURM_LIBS="-lslurm"])])
        AS_IF([test "x$x_ac_have_slurm" = xno && test "x$with_slurm" = xyes],
            [AC_MSG_ERROR([--with-slurm given but libslurm was not found (Debian: libslurm-dev)])])
    ])
    AS_IF([test "x$x_ac_have_slurm" = xyes],
        [AC_DEFINE([HAVE_LIBSLURM], [1], [Define if libslurm is available])])
    AC_SUBST([SLURM_LIBS])
    AM_CONDITIONAL([HAVE_LIBSLURM], [test "x$x_ac_have_slurm" = xyes])
])
