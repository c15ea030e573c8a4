# X_AC_FUZZER: build libFuzzer targets when a clang that supports
# -fsanitize=fuzzer is available ($FUZZ_CC, default clang).
AC_DEFUN([X_AC_FUZZER], [
    AC_ARG_VAR([FUZZ_CC], [C compiler for libFuzzer targets (default: clang)])
    : ${FUZZ_CC:=clang}
    x_ac_have_fuzzer=no
    AC_MSG_CHECKING([whether $FUZZ_CC supports -fsanitize=fuzzer])
    AS_IF([command -v "$FUZZ_CC" >/dev/null 2>&1], [
        printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' > conftest_fuzz.c
        AS_IF(["$FUZZ_CC" -fsanitize=fuzzer,address,undefined conftest_fuzz.c -o conftest_fuzz >/dev/null 2>&1],
            [x_ac_have_fuzzer=yes])
        rm -f conftest_fuzz.c conftest_fuzz
    ])
    AC_MSG_RESULT([$x_ac_have_fuzzer])
    AM_CONDITIONAL([HAVE_FUZZER], [test "x$x_ac_have_fuzzer" = xyes])
])
