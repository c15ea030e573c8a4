#!/bin/sh
test_description='codeswarm doctor asks codex for its effective model provider (config/read)

Without auth.json and OPENAI_API_KEY, a CODEX_HOME whose configuration
names a provider of its own is fine.  doctor asks the real app-server, so
what counts is what codex makes of config.toml: an indented key is a key,
and a model_provider inside a profile table that nobody selects is not the
provider.'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"

codex_testbed_setup
unset OPENAI_API_KEY

# the test bed's config.toml with its model_provider line indented, or
# moved into a profile table that is not selected
provider_home () {
	mkdir -p "$1" &&
	case $2 in
	indented)
		sed "s/^model_provider/    model_provider/" \
			"$CODEX_HOME/config.toml" >"$1/config.toml" ;;
	profile)
		{
			grep -v "^model_provider" "$CODEX_HOME/config.toml"
			printf "\n[profiles.mock]\nmodel_provider = \"mock\"\n"
		} >"$1/config.toml" ;;
	esac &&
	! test -e "$1/auth.json"
}

test_expect_success CODEX 'the test bed home: the provider is found' '
	! test -e "$CODEX_HOME/auth.json" &&
	codeswarm doctor >doctor.out 2>&1 || : &&
	grep "^ok    codex auth: no auth.json, but codex.s configuration names the model provider .mock." doctor.out
'

test_expect_success CODEX 'an indented model_provider is found' '
	provider_home "$PWD/ind" indented &&
	grep "^    model_provider = \"mock\"" "$PWD/ind/config.toml" &&
	env CODEX_HOME="$PWD/ind" codeswarm doctor >doctor.out 2>&1 || : &&
	grep "^ok    codex auth: .*names the model provider .mock." doctor.out
'

test_expect_success CODEX 'a model_provider in a profile nobody selects is not' '
	provider_home "$PWD/prof" profile &&
	grep "^model_provider = \"mock\"" "$PWD/prof/config.toml" &&
	test_expect_code 1 env CODEX_HOME="$PWD/prof" \
		codeswarm doctor >doctor.out 2>&1 &&
	grep "^FAIL  codex auth: no .*auth.json. and no OPENAI_API_KEY$" doctor.out
'

test_done
