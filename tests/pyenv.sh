# Sourced by tests/run.sh and tests/stack: the Python tools the tests and the stack use, in
# target/pyenv (installed once): the local AWS emulator (moto), cfn-lint, schemathesis,
# openapi-spec-validator, openapi-python-client, datamodel-code-generator (strict pydantic
# models of the document), standardwebhooks, aws-sam-translator, PyJWT and the AWS CLI (v1,
# for README's subscriber commands).
VENV=target/pyenv
# moto and the SAM translator are pinned to exact versions: the harness patches moto's internals
# (tests/harness/shims.py reaches into its CloudFormation resource map, its models and its KMS
# responses; tests/harness/deploy.py into its backends) and deploys what this translator makes of
# the template, so another version can break the stack, the emulator or the deploy rehearsal in
# ways no error message names. A venv holding other versions is brought to these.
MOTO_VERSION=5.2.6
SAM_TRANSLATOR_VERSION=1.115.0
PY_PACKAGES=("moto[server]==$MOTO_VERSION" "cfn-lint>=1.20,<2" "schemathesis>=4.32,<5" "openapi-spec-validator>=0.7,<1"
             "openapi-python-client>=0.26,<1" "standardwebhooks>=1.0,<2" "aws-sam-translator==$SAM_TRANSLATOR_VERSION"
             "PyJWT[crypto]>=2.8,<3" "datamodel-code-generator>=0.26,<1" "awscli>=1.33,<2")
if ! { [ -x "$VENV/bin/moto_server" ] && [ -x "$VENV/bin/cfn-lint" ] && [ -x "$VENV/bin/schemathesis" ] \
       && [ -x "$VENV/bin/openapi-spec-validator" ] && [ -x "$VENV/bin/openapi-python-client" ] \
       && [ -x "$VENV/bin/datamodel-codegen" ] && [ -x "$VENV/bin/aws" ] \
       && "$VENV/bin/python" -c "import standardwebhooks, samtranslator, jwt, cryptography" 2>/dev/null \
       && "$VENV/bin/python" -c 'import sys, importlib.metadata as m; sys.exit(m.version("moto") != sys.argv[1]
                                   or m.version("aws-sam-translator") != sys.argv[2])' \
            "$MOTO_VERSION" "$SAM_TRANSLATOR_VERSION" 2>/dev/null; }; then
  echo "==> installing the local AWS emulator, cfn-lint, schemathesis, openapi-spec-validator," >&2
  echo "    openapi-python-client, datamodel-code-generator, standardwebhooks, aws-sam-translator" >&2
  echo "    PyJWT and the AWS CLI into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" >&2
fi

