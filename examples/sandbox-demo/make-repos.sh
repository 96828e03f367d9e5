#!/bin/sh
# Creates the demo's three git repositories under DEST: entry, account and payment, each on
# branch main with VERSION=main, plus account's branch feature-login and payment's branch
# feature-pay (VERSION = the branch name). With --container the services run as containers
# (the manifests of container/). DEST may exist; the three repositories must not.
set -eu
usage() { echo "usage: $0 [--container] DEST" >&2; exit 2; }
variant=.
if [ "${1:-}" = --container ]; then variant=container; shift; fi
[ $# -eq 1 ] || usage
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
dest=$(cd "$1" && pwd)
git_() { git -c user.name=demo -c user.email=demo@example.test -c init.defaultBranch=main "$@"; }

for svc in entry account payment; do
  repo=$dest/$svc
  if [ -e "$repo" ]; then echo "$repo already exists" >&2; exit 1; fi
  git_ init -q "$repo"
  cp "$here/svc.c" "$here/$variant/$svc/"* "$repo/"
  if [ "$variant" = container ]; then cp "$here/container/Dockerfile" "$repo/"; fi
  echo main > "$repo/VERSION"
  git_ -C "$repo" add -A
  git_ -C "$repo" commit -qm "$svc: main"
done

# branch REPO BRANCH: a branch whose only change is VERSION=BRANCH.
branch() {
  git_ -C "$dest/$1" checkout -qb "$2"
  echo "$2" > "$dest/$1/VERSION"
  git_ -C "$dest/$1" commit -qam "$1: $2"
  git_ -C "$dest/$1" checkout -q main
}
branch account feature-login
branch payment feature-pay
echo "repositories in $dest: entry account payment"
