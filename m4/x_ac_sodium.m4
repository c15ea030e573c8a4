# X_AC_SODIUM: optional libsodium, which seals the MQTT relay's payloads.
# The relay (codeswarm-router --relay, --relay-client) is built only when
# both libmosquitto and libsodium are found: HAVE_RELAY.
AC_DEFUN([X_AC_SODIUM], [
    AC_REQUIRE([X_AC_MOSQUITTO])
    AC_ARG_WITH([sodium],
        [AS_HELP_STRING([--with-sodium], [seal relay payloads with libsodium (default: if found)])],
        [], [with_sodium=check])
    x_ac_have_sodium=no
    AS_IF([test "x$with_sodium" != xno], [
        PKG_CHECK_MODULES([SODIUM], [libsodium], [x_ac_have_sodium=yes], [
            AC_CHECK_HEADER([sodium.h], [
                AC_CHECK_LIB([sodium], [sodium_init], [
                    SODIUM_CFLAGS=""
                    SODIUM_LIBS="-lsodium"
                    x_ac_have_sodium=yes])])])
        AS_IF([test "x$x_ac_have_sodium" = xno && test "x$with_sodium" = xyes],
            [AC_MSG_ERROR([--with-sodium given but libsodium was not found (Debian: libsodium-dev)])])
    ])
    AS_IF([test "x$x_ac_have_sodium" = xyes],
        [AC_DEFINE([HAVE_LIBSODIUM], [1], [Define if libsodium is available])])
    AC_SUBST([SODIUM_CFLAGS])
    AC_SUBST([SODIUM_LIBS])
    AM_CONDITIONAL([HAVE_LIBSODIUM], [test "x$x_ac_have_sodium" = xyes])
    x_ac_have_relay=no
    AS_IF([test "x$x_ac_have_sodium" = xyes && test "x$x_ac_have_mosquitto" = xyes],
        [x_ac_have_relay=yes
         AC_DEFINE([HAVE_RELAY], [1], [Define if the MQTT relay is built (libmosquitto and libsodium)])])
    AM_CONDITIONAL([HAVE_RELAY], [test "x$x_ac_have_relay" = xyes])
])
