# tests/307_notify_email_connections.pl: the email stage keeps its SMTP
# connection from message to message, and gets a new one when the server
# closed it.
#
# The stages as separate processes (the fan-out stage plans and produces a
# batch at a time), the email stage with one consumer thread.  12 users
# each get a new task by email: 12 emails, each once, over ONE connection
# (the SMTP sink numbers its connections; one connection and one session
# per email is what the notifier did before it kept them).  Then the SMTP
# server restarts on the same port, so the kept connection is dead: 6 more
# emails arrive, each once, over one new connection, with nothing
# dead-lettered and no email left unsent in the delivery log.  Last, one
# batch of three fired reminders of which the middle one cannot be planned
# (its task id is no uuid): the fan-out stage's batch is refused by the
# database and offered again event by event, so the other two are emailed,
# each once, and only the bad one is dead-lettered.

use strict;
use warnings;

use JSON::PP;
use Test::More;
use TodoKafkaTest;
use NotifyTest;

my $json = JSON::PP->new;
my $s = TodoKafkaTest->start_stack('t307');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

my $rx = NotifyTest->new;
$rx->start_smtp;
$s->sql("SELECT count(todo_kafka.set_notification_email('u' || g, 'u' || g || '\@example.com')),
		count(todo_kafka.set_notification_channels('u' || g, 'task_created', '{email}'))
	FROM generate_series(1, 21) g");

my $conf = $rx->config;
my %st;
for my $stage (qw(fanout email))
{
	$st{$stage} = TodoKafkaTest->start_service('notify', $node, $kafka,
		args => [ '-c', $conf, '--stage', $stage ], name => "notify-$stage");
}
ok($st{email}->wait_log(qr/consuming stream notifications/), 'email stage started');

# the sink's envelope lines (one per accepted message, with its connection number)
sub envelopes
{
	my $f = $rx->dir . '/mail/envelopes.jsonl';
	return [] unless -e $f;
	return [ map { $json->decode($_) } grep { length } split /\n/, TodoKafkaTest::slurp($f) ];
}

sub connections { my %c = map { ($_->{connection} => 1) } @_; return scalar keys %c; }

# new tasks for users u$from .. u$to; every envelope once all their emails came
sub emails_after_new_tasks
{
	my ($from, $to, $what) = @_;
	$s->sql("SELECT count(todo_kafka.add_task('u' || g, 'Task of u' || g)) FROM generate_series($from, $to) g");
	ok(wait_until($what, sub { @{ envelopes() } >= $to }, 60), $what) or diag($st{email}->log_text);
	sleep(1);
	return @{ envelopes() };
}

my @first = emails_after_new_tasks(1, 12, '12 emails arrived');
is(scalar @first, 12, 'each email once');
is(connections(@first), 1, 'all 12 over one SMTP connection')
  or diag(explain [ map { "$_->{file}: connection $_->{connection}" } @first ]);

# the server goes away and comes back: the kept connection is dead
$rx->stop_smtp;
$rx->start_smtp;    # the same port, numbers its connections from 1 again
my @all = emails_after_new_tasks(13, 18, 'after the restart: 6 more emails');
is(scalar @all, 18, 'each email once, 18 in all');
is_deeply([ sort map { $_->{rcpt_tos}[0] } @all ], [ sort map { "u$_\@example.com" } 1 .. 18 ],
	'one email to each user');
is(connections(@all[12 .. $#all]), 1, 'the 6 after the restart over one new connection');
is($s->sql("SELECT count(*) FROM todo_kafka.notification_deliveries
	WHERE channel = 'email' AND status <> 'delivered'"), 0, 'every email delivered in the log');
is(scalar(@{ $kafka->consume($t->{dead_letter}) }), 0, 'nothing dead-lettered');

# one batch with a bad event in the middle (one kcat call, one partition)
my @batch = map {
	$json->encode({ specversion => '1.0', id => "t307-$_->[0]", source => '/t307', type => 'task.reminder',
			data => { user_id => $_->[1], task_id => $_->[2], event_type => 'sent',
				notification_method => 'email' } })
} ([ 'a', 'u19', '00000000-0000-4000-8000-000000000019' ], [ 'bad', 'u20', 'not-a-uuid' ],
	[ 'c', 'u21', '00000000-0000-4000-8000-000000000021' ]);
my ($ok, $err) = $kafka->produce($t->{reminders}, \@batch, partition => 0);
ok($ok, 'three fired reminders produced in one batch') or diag($err);
my $dl = TodoKafkaTest::consume_events($kafka, $t->{dead_letter}, count => 1, timeout => 60);
ok(wait_until('2 reminder emails', sub { @{ envelopes() } >= 20 }, 60), 'the two good reminders emailed')
  or diag($st{fanout}->log_text);
sleep(1);
@all = @{ envelopes() };
is(scalar @all, 20, 'each once');
is_deeply([ sort map { $_->{rcpt_tos}[0] } @all[18 .. $#all] ], [ 'u19@example.com', 'u21@example.com' ],
	'to u19 and u21');
is(scalar @$dl, 1, 'one dead letter');
like($dl->[0]{payload} // '', qr/t307-bad/, '... the bad event') or diag(explain $dl);
unlike($dl->[0]{payload} // '', qr/t307-[ac]/, '... alone');

for my $stage (qw(fanout email))
{
	is($st{$stage}->stop, 0, "$stage stage: SIGTERM, exit 0");
}
is($relay->stop, 0, 'relay: exit 0');
$s->stop;
$rx->stop;
done_testing();
