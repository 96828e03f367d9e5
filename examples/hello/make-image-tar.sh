#!/bin/sh
# Writes image.tar in `docker save` format from the static ./server binary, without docker
# and without a registry: the offline path for nodes that cannot pull.
set -eu
out=${1:-image.tar}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/rootfs"
cp server VERSION "$work/rootfs/"
tar -C "$work/rootfs" -cf "$work/layer.tar" .
layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$work/$layer"
mv "$work/layer.tar" "$work/$layer/layer.tar"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["BIND=0.0.0.0"],"Entrypoint":["/server"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" > "$work/config.json"
config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$work/$config.json"
printf '[{"Config":"%s.json","RepoTags":["hello:%s"],"Layers":["%s/layer.tar"]}]' "$config" "$(cat VERSION)" "$layer" > "$work/manifest.json"
tar -C "$work" -cf "$out" manifest.json "$config.json" "$layer"
echo "wrote $out (layer sha256:$layer)"
