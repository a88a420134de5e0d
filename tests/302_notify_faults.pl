# tests/302_notify_faults.pl: todo-kafka-notify under faults.
#
# 1. SIGKILL mid-delivery: a slow SMTP server (0.3 s per message) and 15
#    new-task emails; the service is SIGKILLed after a few were accepted
#    and started again.  No email arrives twice (unique Message-IDs); each
#    notification is delivered or, if the kill hit its SMTP session,
#    recorded as interrupted and not sent again (at most once).
# 2. The SMTP server down for 20 s, with the stages as separate processes
#    (fanout, email, realtime): push and in-app keep flowing during the
#    outage, nothing is dead-lettered, and after the server returns each
#    email arrives once.

use strict;
use warnings;

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use TodoKafkaTest;
use NotifyTest;

my $s = TodoKafkaTest->start_stack('t302');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

########################################################################
# 1. SIGKILL mid-delivery
########################################################################
my $rx = NotifyTest->new;
$rx->start_smtp(delay => 0.3);
$rx->start_push;
$rx->allow_loopback_receivers($node);
$s->sql("SELECT todo_kafka.set_notification_email('dave', 'dave\@example.com');
	SELECT todo_kafka.set_notification_channels('dave', 'task_created', '{email}');");
my $conf = $rx->config;
my $svc = TodoKafkaTest->start_service('notify', $node, $kafka, args => [ '-c', $conf ]);
ok($svc->wait_log(qr/consuming stream notifications/), 'notify started');
$s->sql(join '', map { "SELECT 1 FROM todo_kafka.add_task('dave', 'Chore $_');" } 1 .. 15);

ok(wait_until('a few emails accepted', sub { @{ $rx->emails } >= 3 }, 60), 'a few emails accepted')
  or diag($svc->log_text);
$svc->kill9;
note('killed after ' . scalar(@{ $rx->emails }) . ' emails');
$svc = TodoKafkaTest->start_service('notify', $node, $kafka, args => [ '-c', $conf ]);
ok(wait_until('after the restart every email is delivered or recorded as interrupted', sub {
	$s->sql("SELECT count(*) FROM todo_kafka.notification_deliveries
		  WHERE channel = 'email' AND status IN ('delivered', 'interrupted')") == 15 }, 90),
	'after the restart every email is delivered or recorded as interrupted')
  or diag($s->sql('SELECT status, count(*) FROM todo_kafka.notification_deliveries GROUP BY 1') . "\n" . $svc->log_text);
sleep(1);
my @mails = @{ $rx->emails };
my %mid;
$mid{ $_->{message_id} }++ for @mails;
is(scalar(grep { $_ > 1 } values %mid), 0, 'no email arrived twice (unique Message-IDs)');
my ($delivered, $interrupted) = split /\|/, $s->sql(
	"SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status = 'interrupted')
	   FROM todo_kafka.notification_deliveries WHERE channel = 'email'");
cmp_ok($interrupted, '<=', 1, "at most the one email in flight was interrupted ($interrupted)");
cmp_ok(scalar @mails, '>=', $delivered, 'every email logged as delivered was received');
cmp_ok(scalar @mails, '<=', $delivered + $interrupted, '... and nothing else');
is($s->sql("SELECT count(*) FROM todo_kafka.notification_deliveries WHERE status = 'sending'"), 0,
	'no claim left open');
like($svc->log_text, qr/interrupted mid-send; not sent again/, 'the interrupted one is logged')
  if $interrupted;
is($svc->stop, 0, 'notify: SIGTERM, exit 0');
$rx->stop_smtp;

########################################################################
# 2. SMTP down for 20 s, stages as separate processes
########################################################################
$rx = NotifyTest->new;
$rx->start_smtp;
$rx->start_push;
my $sub = $rx->subscription;
my $origin = $rx->push_origin;
$s->sql("SELECT todo_kafka.set_notification_email('erin', 'erin\@example.com');
	SELECT todo_kafka.add_push_subscription('erin', '$origin/erin', '$sub->{p256dh}', '$sub->{auth}');
	SELECT todo_kafka.set_notification_channels('erin', 'task_created', '{email,push,in_app}');");
$conf = $rx->config;
my %st;
for my $stage (qw(fanout email realtime))
{
	$st{$stage} = TodoKafkaTest->start_service('notify', $node, $kafka,
		args => [ '-c', $conf, '--stage', $stage ], name => "notify-$stage");
}
ok($st{email}->wait_log(qr/consuming stream notifications/), 'email stage started');
ok($st{realtime}->wait_log(qr/consuming stream notifications/), 'realtime stage started');

$rx->stop_smtp;
my $down_at = time;
$s->sql("SELECT 1 FROM todo_kafka.add_task('erin', 'During the outage 1')");
ok(wait_until('SMTP down: the push arrives', sub { (grep { $_->{path} eq '/erin' } @{ $rx->pushes }) >= 1 }, 15),
	'SMTP down: the push arrives') or diag($st{realtime}->log_text);
ok($s->wait_sql("SELECT count(*) >= 1 FROM todo_kafka.notifications WHERE user_id = 'erin'", 't', 15),
	'SMTP down: the inbox row arrives');
ok($st{email}->wait_log(qr/pauses its partitions/, 20), 'the email stage pauses its partitions');
sleep(5);
$s->sql("SELECT 1 FROM todo_kafka.add_task('erin', 'During the outage 2')");
ok(wait_until('still down: the second push arrives', sub { (grep { $_->{path} eq '/erin' } @{ $rx->pushes }) >= 2 }, 15),
	'still down: the second push arrives');
ok($s->wait_sql("SELECT count(*) >= 2 FROM todo_kafka.notifications WHERE user_id = 'erin'", 't', 15),
	'still down: the second inbox row arrives');
is(scalar @{ $rx->emails }, 0, 'no email while the server is down');
my $left = 20 - (time - $down_at);
sleep($left) if $left > 0;
is(scalar(@{ $kafka->consume($t->{dead_letter}) }), 0, 'nothing dead-lettered during 20 s of outage');

$rx->start_smtp;    # the same port
ok(wait_until('the server is back: both emails arrive', sub { @{ $rx->emails } >= 2 }, 60), 'the server is back: both emails arrive')
  or diag($st{email}->log_text);
sleep(2);
my @m = @{ $rx->emails };
is(scalar @m, 2, 'each email once');
is_deeply([ sort map { $_->{subject} } @m ],
	[ 'New task: During the outage 1', 'New task: During the outage 2' ], '... the two new tasks');
is(scalar(grep { $_->{path} eq '/erin' } @{ $rx->pushes }), 2, 'each push once');
is($s->sql("SELECT count(*) FROM todo_kafka.notifications WHERE user_id = 'erin'"), 2, 'each inbox row once');
is(scalar(@{ $kafka->consume($t->{dead_letter}) }), 0, 'still nothing dead-lettered');

for my $stage (qw(fanout email realtime))
{
	is($st{$stage}->stop, 0, "$stage stage: SIGTERM, exit 0");
}
is($relay->stop, 0, 'relay: exit 0');
$s->stop;
$rx->stop;
done_testing();
