# X_AC_CHECK_CC_FLAG(FLAG, ACTION-IF-OK)
# Probe whether $CC accepts FLAG (with -Werror so unknown flags fail).
AC_DEFUN([X_AC_CHECK_CC_FLAG], [
    AS_VAR_PUSHDEF([cache], [x_ac_cv_cflag_$1])
    AC_CACHE_CHECK([whether $CC accepts $1], [cache], [
        save_CFLAGS=$CFLAGS
        CFLAGS="$CFLAGS -Werror $1"
        AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
            [AS_VAR_SET([cache], [yes])], [AS_VAR_SET([cache], [no])])
        CFLAGS=$save_CFLAGS
    ])
    AS_VAR_IF([cache], [yes], [$2])
    AS_VAR_POPDEF([cache])
])

# X_AC_REQUIRE_LIB(VAR, PKG, HEADER, LIB, FUNC, DESCRIPTION)
# pkg-config first, then a header + library fallback; fatal when missing.
AC_DEFUN([X_AC_REQUIRE_LIB], [
    PKG_CHECK_MODULES([$1], [$2], [x_ac_found=yes], [x_ac_found=no])
    AS_IF([test "x$x_ac_found" = xno], [
        AC_CHECK_HEADER([$3], [
            AC_CHECK_LIB([$4], [$5], [
                $1_CFLAGS=""
                $1_LIBS="-l$4"
                x_ac_found=yes])])
    ])
    AS_IF([test "x$x_ac_found" = xno],
        [AC_MSG_ERROR([$6 is required])])
    AC_SUBST([$1_CFLAGS])
    AC_SUBST([$1_LIBS])
])
