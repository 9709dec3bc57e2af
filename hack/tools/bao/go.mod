// Wrapper module: builds the real OpenBao server (bao) from github.com/openbao/openbao.
// Its tags are v2.x.y without a /v2 module path, so the root module is required by the
// pseudo-version of the v2.4.0 tag commit; its api/v2 and sdk/v2 submodules, which upstream
// replaces with ./api and ./sdk (absent from the module zip), are pinned to proxy releases.
// go.sum carries upstream's own go-kms-wrapping lines: the checksum database lacks them.
module aitask.dev/hack/tools/bao

go 1.24.6

require github.com/openbao/openbao v0.0.0-20250828202315-f9407a27fbee

replace (
	github.com/openbao/openbao/api/auth/approle/v2 => github.com/openbao/openbao/api/auth/approle/v2 v2.0.0
	github.com/openbao/openbao/api/auth/kubernetes/v2 => github.com/openbao/openbao/api/auth/kubernetes/v2 v2.0.1
	github.com/openbao/openbao/api/auth/userpass/v2 => github.com/openbao/openbao/api/auth/userpass/v2 v2.0.0
	github.com/openbao/openbao/api/v2 => github.com/openbao/openbao/api/v2 v2.4.0
	github.com/openbao/openbao/sdk/v2 => github.com/openbao/openbao/sdk/v2 v2.4.0
)
