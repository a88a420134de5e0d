# tests/800_soak.pl: the short form of tests/soak, the whole system under
# load and faults (about 4 minutes), for prove and CI.  tests/soak speaks
# TAP itself; this file only hands over to it, so that `make check-relay`
# and .ci/run pick it up with the other end-to-end tests.
use strict;
use warnings;
use FindBin;

exec($^X, "$FindBin::RealBin/soak") or die "cannot run tests/soak: $!";
