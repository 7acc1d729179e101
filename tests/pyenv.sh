# Sourced by tests/run.sh and tests/stack: the Python tools the tests and the stack use, in
# target/pyenv (installed once): the local AWS emulator (moto), cfn-lint, schemathesis,
# openapi-spec-validator, openapi-python-client, datamodel-code-generator (strict pydantic
# models of the document), standardwebhooks, aws-sam-translator, PyJWT and the AWS CLI (v1,
# for README's subscriber commands).
VENV=target/pyenv
PY_PACKAGES=("moto[server]>=5.1,<6" "cfn-lint>=1.20,<2" "schemathesis>=4.32,<5" "openapi-spec-validator>=0.7,<1"
             "openapi-python-client>=0.26,<1" "standardwebhooks>=1.0,<2" "aws-sam-translator>=1.90,<2"
             "PyJWT[crypto]>=2.8,<3" "datamodel-code-generator>=0.26,<1" "awscli>=1.33,<2")
if ! { [ -x "$VENV/bin/moto_server" ] && [ -x "$VENV/bin/cfn-lint" ] && [ -x "$VENV/bin/schemathesis" ] \
       && [ -x "$VENV/bin/openapi-spec-validator" ] && [ -x "$VENV/bin/openapi-python-client" ] \
       && [ -x "$VENV/bin/datamodel-codegen" ] && [ -x "$VENV/bin/aws" ] \
       && "$VENV/bin/python" -c "import standardwebhooks, samtranslator, jwt, cryptography" 2>/dev/null; }; then
  echo "==> installing the local AWS emulator, cfn-lint, schemathesis, openapi-spec-validator," >&2
  echo "    openapi-python-client, datamodel-code-generator, standardwebhooks, aws-sam-translator" >&2
  echo "    PyJWT and the AWS CLI into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" >&2
fi

