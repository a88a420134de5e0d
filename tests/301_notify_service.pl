# tests/301_notify_service.pl: todo-kafka-notify end to end, against real
# receivers.
#
# PostgreSQL -> relay -> devbroker -> todo-kafka-notify (fan-out and
# delivery in one process) -> Debian's aiosmtpd (each message parsed with
# Python's email package), the test push service (VAPID verified, aes128gcm
# decrypted with Python's cryptography package) and the in-app inbox, with
# the NOTIFY seen by a session that LISTENs on the user's inbox channel.
#
# alice (Europe/Berlin) has an email address, a working subscription and
# one whose push service answers 410; she wants new tasks on every channel.
# One new task with a reminder on each channel gives two emails, two pushes
# to the working subscription, one request to the 410 one (after which it
# is removed), two inbox rows and two NOTIFYs.  carol's only subscription
# answers 404: her reminder is dead-lettered at once (one attempt) and the
# subscription removed (her new task reaches her inbox: the default).  Then a second service in another consumer group
# reads every topic again from the start: nothing is delivered twice.

use strict;
use warnings;

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use TodoKafkaTest;
use NotifyTest;

my $json = JSON::PP->new;
my $s = TodoKafkaTest->start_stack('t301');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

my $rx = NotifyTest->new(push_status => { '/gone410' => 410, '/gone404' => 404 });
$rx->start_smtp;
$rx->start_push;
$rx->allow_loopback_receivers($node);
my $sub = $rx->subscription;
my $origin = $rx->push_origin;

$s->sql("SELECT todo_kafka.set_user_time_zone('alice', 'Europe/Berlin');
	SELECT todo_kafka.set_notification_email('alice', 'alice\@example.com');
	SELECT todo_kafka.add_push_subscription('alice', '$origin/alice', '$sub->{p256dh}', '$sub->{auth}');
	SELECT todo_kafka.add_push_subscription('alice', '$origin/gone410', '$sub->{p256dh}', '$sub->{auth}');
	SELECT todo_kafka.set_notification_channels('alice', 'task_created', '{email,push,in_app}');
	SELECT todo_kafka.add_push_subscription('carol', '$origin/gone404', '$sub->{p256dh}', '$sub->{auth}');");

my $svc = TodoKafkaTest->start_service('notify', $node, $kafka,
	args => [ '-c', $rx->config ]);
ok($svc->wait_log(qr/consuming stream notifications = topic \Q$t->{notifications}\E/),
	'notify consumes the notifications topic');

# a session that listens on alice's inbox
my $channel = $s->sql("SELECT todo_kafka.inbox_channel('alice')");
my $listener = $node->background_psql('postgres');
$listener->query_safe(qq{LISTEN "$channel"});

my $task = $s->sql("SELECT id FROM todo_kafka.add_task('alice', 'Pay rent',
	p_due_date => date_trunc('second', now()) + interval '4 s', p_reminder_offsets => '{2 seconds}',
	p_notification_methods => '{email,push,in_app}')");
like($task, qr/^[0-9a-f-]{36}$/, 'task with reminders on three channels created');
my $due_local = $s->sql("SELECT todo_kafka.notify_local_time(due_date, 'Europe/Berlin')
	FROM todo_kafka.tasks WHERE id = '$task'");
like($due_local, qr/^\d{4}-\d\d-\d\d \d\d:\d\d CES?T \(Europe\/Berlin\)$/, "due time in Berlin: $due_local");

ok(wait_until('two emails arrived', sub { @{ $rx->emails } >= 2 }, 60), 'two emails arrived')
  or diag($svc->log_text);
ok(wait_until('two pushes arrived', sub { (grep { $_->{path} eq '/alice' } @{ $rx->pushes }) >= 2 }, 30),
	'two pushes arrived') or diag($svc->log_text);
ok($s->wait_sql("SELECT count(*) >= 2 FROM todo_kafka.notifications WHERE user_id = 'alice'", 't', 30),
	'two inbox rows');

# email
my @mails = @{ $rx->emails };
is(scalar @mails, 2, 'exactly two emails');
my ($created) = grep { $_->{subject} eq 'New task: Pay rent' } @mails;
my ($reminder) = grep { $_->{subject} eq 'Reminder: Pay rent' } @mails;
ok($created, 'the new-task email') or diag(explain \@mails);
ok($reminder, 'the reminder email');
for my $m (grep { defined } $created, $reminder)
{
	is($m->{to}, 'alice@example.com', "$m->{subject}: To");
	like($m->{from}, qr/<reminders\@todo\.example>$/, "$m->{subject}: From");
	ok($m->{date_ok}, "$m->{subject}: Date parses");
	like($m->{message_id}, qr/^<notify\.[^@\s]+\@todo\.example>$/, "$m->{subject}: Message-ID");
	is($m->{auto_submitted}, 'auto-generated', "$m->{subject}: Auto-Submitted");
	is($m->{content_type}, 'text/plain', "$m->{subject}: text/plain");
	like($m->{body}, qr/"Pay rent" .*due at \Q$due_local\E\./, "$m->{subject}: body names the task and its due time in Berlin");
}
isnt($created && $created->{message_id}, $reminder && $reminder->{message_id}, 'distinct Message-IDs');

# push
my @push = grep { $_->{path} eq '/alice' } @{ $rx->pushes };
is(scalar @push, 2, 'exactly two pushes to the working subscription');
for my $p (@push)
{
	ok($p->{vapid_ok}, 'VAPID verified by the receiver') or diag($p->{vapid_error});
	ok($p->{decrypt_ok}, 'payload decrypted by the receiver') or diag($p->{decrypt_error});
}
my %pl = map { my $d = $json->decode($_->{payload} // '{}'); ($d->{kind} // '?' => { %$d, urgency => $_->{headers}{urgency} }) } @push;
is($pl{reminder}{title}, 'Reminder: Pay rent', 'reminder push: title');
like($pl{reminder}{body} // '', qr/\Q$due_local\E/, 'reminder push: body with the due time');
is($pl{reminder}{task_id}, $task, 'reminder push: task id');
is($pl{reminder}{urgency}, 'high', 'reminder push: Urgency high');
is($pl{task_created}{title}, 'New task: Pay rent', 'new-task push: title');
is(scalar(grep { $_->{path} eq '/gone410' } @{ $rx->pushes }), 1, 'the 410 subscription was tried once');
is($s->sql("SELECT count(*) FROM todo_kafka.push_subscriptions WHERE endpoint = '$origin/gone410'"), 0,
	'410: subscription removed');
is($s->sql("SELECT count(*) FROM todo_kafka.push_subscriptions WHERE endpoint = '$origin/alice'"), 1,
	'the working subscription stays');

# in-app and NOTIFY
# (task events and reminders are different topics: no order between them)
is($s->sql("SELECT string_agg(kind || ': ' || title, ', ' ORDER BY kind) FROM todo_kafka.notifications WHERE user_id = 'alice'"),
	'reminder: Reminder: Pay rent, task_created: New task: Pay rent', 'inbox: the reminder and the new task');
my $seen = '';
wait_until('two NOTIFYs', sub {
	$seen .= $listener->query_safe('SELECT 1') // '';
	my @n = $seen =~ /Asynchronous notification "\Q$channel\E" with payload "(.*?)" received/g;
	return @n >= 2;
}, 15);
my @notes = map { $json->decode($_) } $seen =~ /Asynchronous notification "\Q$channel\E" with payload "(.*?)" received/g;
is(scalar @notes, 2, 'the listening session got two NOTIFYs') or diag($seen);
is_deeply([ sort map { $_->{title} } @notes ], [ 'New task: Pay rent', 'Reminder: Pay rent' ],
	'... with the inbox rows as payload');
$listener->quit;

# 404: dead-lettered at once, subscription removed
$s->sql("SELECT id FROM todo_kafka.add_task('carol', 'Water plants',
	p_due_date => now() + interval '3 s', p_reminder_offsets => '{1 second}',
	p_notification_methods => '{push}')");
my $dl = TodoKafkaTest::consume_events($kafka, $t->{dead_letter}, count => 1, timeout => 60);
my ($d404) = grep { ($_->{hdr}{'dlq-origin-topic'} // '') eq $t->{notifications} } @$dl;
ok($d404, 'the 404 notification is on the dead-letter topic') or diag($svc->log_text);
is($d404 && $d404->{hdr}{'dlq-attempts'}, 1, '... after one attempt');
like($d404 && $d404->{hdr}{'dlq-reason'}, qr/404/, '... the reason names the 404');
is($d404 && $d404->{key}, 'carol', '... key is the user');
is($s->sql("SELECT count(*) FROM todo_kafka.push_subscriptions WHERE user_id = 'carol'"), 0,
	'404: subscription removed');
is(scalar(grep { $_->{path} eq '/gone404' } @{ $rx->pushes }), 1, 'the 404 endpoint was tried once');

# the fan-out's messages
my $q = TodoKafkaTest::consume_events($kafka, $t->{notifications}, count => 8, timeout => 30);
my @alice_q = grep { ($_->{key} // '') eq 'alice' } @$q;
is(scalar @alice_q, 6, 'six notifications queued for alice (2 events x 3 channels)');
my ($qe) = grep { $_->{event}{data}{channel} eq 'email' && $_->{event}{data}{kind} eq 'reminder' } @alice_q;
is($qe && $qe->{event}{type}, 'notification.requested', 'queued: CloudEvents type');
# the envelope every message has (common/messages/envelope.c)
is(scalar(grep { ($_->{event}{dataschema} // '') ne 'https://todo-kafka.dev/schemas/notifications.v1.json' } @$q),
	0, 'queued: every notification names its schema (dataschema)');
is(scalar(grep { !defined $_->{event}{partitionkey} || $_->{event}{partitionkey} ne ($_->{key} // '') } @$q),
	0, 'queued: partitionkey is the Kafka key (the user)');
is_deeply([ TodoKafkaTest::validate_schemas(map { [ 'notifications.v1', $_->{payload} ] } @$q) ],
	[ ('ok') x @$q ], 'queued: every notification validates against schemas/notifications.v1.json');
is($qe && $qe->{event}{id}, $qe && "$qe->{event}{data}{source_event_id}:email", 'queued: id = <source event id>:<channel>');
is($qe && $qe->{event}{data}{due_local}, $due_local, 'queued: due time in the user\'s zone');

is($s->sql("SELECT status, count(*) FROM todo_kafka.notification_deliveries GROUP BY 1 ORDER BY 1"),
	"delivered|7\ngone|2", 'delivery log: seven delivered (carol\'s new task in-app), two gone');

# a second group reads everything again: the delivery log says it was done
my $emails_before = scalar @{ $rx->emails };
my $pushes_before = scalar @{ $rx->pushes };
my $replay = TodoKafkaTest->start_service('notify', $node, $kafka,
	args => [ '-c', $rx->config(group_prefix => 'replay-') ]);
ok($replay->wait_log(qr/consuming stream notifications/), 'replay service started');
# it queues the eight notifications again (same ids), then skips each delivery
ok(wait_until('replay: the fan-out queued the same notifications again', sub { scalar(@{ $kafka->consume($t->{notifications}) }) >= 16 }, 60),
	'replay: the fan-out queued the same notifications again');
sleep(3);
is(scalar @{ $rx->emails }, $emails_before, 'replay: no second email');
is(scalar @{ $rx->pushes }, $pushes_before, 'replay: no second push');
is($s->sql("SELECT count(*) FROM todo_kafka.notifications"), 3, 'replay: no second inbox row');
my %ids = map { $_->{event}{id} => 1 } @{ TodoKafkaTest::consume_events($kafka, $t->{notifications}) };
is(scalar keys %ids, 8, 'replay: the queued copies carry the same ids');

is($replay->stop, 0, 'replay service: SIGTERM, exit 0');
is($svc->stop, 0, 'notify: SIGTERM, exit 0');
unlike($svc->log_text, qr/\Q$sub->{auth}\E|\Q$origin\/alice\E/, 'no keys or endpoints in the log');
is($relay->stop, 0, 'relay: exit 0');
$s->stop;
$rx->stop;
done_testing();
