/* ---------------------------------------------------------------------------
 * The delivery log says when a notification was dead-lettered (issue 16).
 *
 * A send that failed on its last attempt, or was refused for good, sent the
 * notification to the dead-letter topic; its row used to stay 'retry' (or
 * say 'failed'), as if it would still be tried.  todo-kafka-notify now
 * records it with delivery_done(..., 'dead_lettered', detail), a final
 * status for the service.  Replaying the dead letter (todo-kafka-dlq) is an
 * operator's request to try again: delivery_claim() claims a
 * 'dead_lettered' row as it does a 'retry' one.  'failed' stays valid for
 * rows written before (and by a service binary older than this version),
 * and is still skipped by a claim.
 * ------------------------------------------------------------------------- */

ALTER TABLE todo_kafka.notification_deliveries
	DROP CONSTRAINT notification_deliveries_status_check;
ALTER TABLE todo_kafka.notification_deliveries
	ADD CONSTRAINT notification_deliveries_status_check
	CHECK (status IN ('sending', 'retry', 'delivered', 'gone', 'failed', 'interrupted',
					  'dead_lettered'));

/*
 * Claim one send (see 0.3.0--0.4.0).  Returns
 *	 'claimed'		send it now, then delivery_done() or delivery_retry()
 *	 'delivered', 'gone', 'failed'	done before: skip
 *	 'interrupted'	an earlier attempt died mid-send: skip (at most once),
 *					unless p_take_over
 * A row in 'retry' or 'dead_lettered' (a replayed dead letter) is claimed.
 */
CREATE OR REPLACE FUNCTION todo_kafka.delivery_claim(p_notification_id text, p_channel text,
													 p_target text, p_user_id text,
													 p_take_over boolean DEFAULT false)
	RETURNS text LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_status	text;
BEGIN
	INSERT INTO todo_kafka.notification_deliveries (notification_id, channel, target, user_id, status)
		VALUES (p_notification_id, p_channel, p_target, p_user_id, 'sending')
		ON CONFLICT DO NOTHING;
	IF FOUND THEN
		RETURN 'claimed';
	END IF;
	SELECT d.status INTO v_status FROM todo_kafka.notification_deliveries d
	 WHERE d.notification_id = p_notification_id AND d.channel = p_channel AND d.target = p_target
	   FOR UPDATE;
	IF v_status IN ('retry', 'dead_lettered') OR
		(v_status IN ('sending', 'interrupted') AND p_take_over) THEN
		UPDATE todo_kafka.notification_deliveries d
		   SET status = 'sending', attempts = d.attempts + 1, claimed_at = clock_timestamp()
		 WHERE d.notification_id = p_notification_id AND d.channel = p_channel
		   AND d.target = p_target;
		RETURN 'claimed';
	END IF;
	IF v_status = 'sending' THEN
		UPDATE todo_kafka.notification_deliveries d
		   SET status = 'interrupted', finished_at = clock_timestamp(),
			   detail = 'an earlier attempt was interrupted before its outcome was recorded; not sent again'
		 WHERE d.notification_id = p_notification_id AND d.channel = p_channel
		   AND d.target = p_target;
		RETURN 'interrupted';
	END IF;
	RETURN v_status;
END
$$;

/*
 * The outcome of a claimed send: delivered, gone (404/410), dead_lettered
 * (refused for good, or failed on its last attempt: the notification went
 * to the dead-letter topic) or failed (what older services wrote for a
 * refusal).
 */
CREATE OR REPLACE FUNCTION todo_kafka.delivery_done(p_notification_id text, p_channel text,
													p_target text, p_user_id text,
													p_status text, p_detail text DEFAULT NULL)
	RETURNS void LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_status IS NULL OR p_status NOT IN ('delivered', 'gone', 'dead_lettered', 'failed') THEN
		RAISE EXCEPTION 'invalid delivery outcome: "%"', p_status
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'An outcome is delivered, gone or dead_lettered.';
	END IF;
	INSERT INTO todo_kafka.notification_deliveries AS d
			(notification_id, channel, target, user_id, status, detail, finished_at)
		VALUES (p_notification_id, p_channel, p_target, p_user_id, p_status, p_detail,
				clock_timestamp())
		ON CONFLICT (notification_id, channel, target) DO UPDATE
			SET status = EXCLUDED.status, detail = EXCLUDED.detail,
				finished_at = EXCLUDED.finished_at;
END
$$;
