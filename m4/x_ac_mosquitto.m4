# X_AC_MOSQUITTO: optional libmosquitto for the MQTT relay.
AC_DEFUN([X_AC_MOSQUITTO], [
    AC_ARG_WITH([mosquitto],
        [AS_HELP_STRING([--with-mosquitto], [build the MQTT relay with libmosquitto (default: if found)])],
        [], [with_mosquitto=check])
    x_ac_have_mosquitto=no
    AS_IF([test "x$with_mosquitto" != xno], [
        PKG_CHECK_MODULES([MOSQUITTO], [libmosquitto], [x_ac_have_mosquitto=yes], [
            AC_CHECK_HEADER([mosquitto.h], [
                AC_CHECK_LIB([mosquitto], [mosquitto_lib_init], [
                    MOSQUITTO_CFLAGS=""
                    MOSQUITTO_LIBS="-lmosquitto"
                    x_ac_have_mosquitto=yes])])])
        AS_IF([test "x$x_ac_have_mosquitto" = xno && test "x$with_mosquitto" = xyes],
            [AC_MSG_ERROR([--with-mosquitto given but libmosquitto was not found (Debian: libmosquitto-dev)])])
    ])
    AS_IF([test "x$x_ac_have_mosquitto" = xyes],
        [AC_DEFINE([HAVE_LIBMOSQUITTO], [1], [Define if libmosquitto is available])])
    AC_SUBST([MOSQUITTO_CFLAGS])
    AC_SUBST([MOSQUITTO_LIBS])
    AM_CONDITIONAL([HAVE_LIBMOSQUITTO], [test "x$x_ac_have_mosquitto" = xyes])
])
