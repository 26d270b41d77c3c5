/*
 * evs_deliver: who receives what, within one process -- self-delivery for
 * both send functions, one copy however many groups match, filtering by
 * joined groups, duplicates in the joined list, several handles in one
 * process (corosync refuses a second CPG join per pid; the hub shares
 * one), payload bytes and alignment, empty payloads, the order of
 * deliveries across groups, and evs_finalize from inside a callback.
 */
#include "evs_tap.h"

struct msg {
	uint32_t seq;
	uint32_t tag;
	char text[48];
};

static int find_seq(struct e_rec *r, uint32_t tag, uint32_t seq)
{
	int n = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct e_ev *e = &r->ev[i];
		if (e->type != E_DELIVER || e->len != sizeof(struct msg))
			continue;
		struct msg m;
		memcpy(&m, e->head, sizeof m);
		if (m.tag == tag && m.seq == seq)
			n++;
	}
	return n;
}

static void send_msg(const char *check, evs_handle_t h, const struct evs_group *g, size_t ng, uint32_t tag,
		     uint32_t seq)
{
	struct msg m;
	memset(&m, 0, sizeof m);
	m.seq = seq;
	m.tag = tag;
	snprintf(m.text, sizeof m.text, "tag %u seq %u", tag, seq);
	cs_error_t rc = e_send_groups(h, g, ng, &m, sizeof m);
	if (rc != CS_OK)
		t_fail(check, "send tag %u seq %u: %s", tag, seq, t_err(rc));
}

int main(int argc, char **argv)
{
	(void)argc;
	t_start(argv[0], 90);
	struct e_rec *ra = e_rec_new(), *rb = e_rec_new(), *rc_ = e_rec_new();
	evs_handle_t a, b, c;
	e_init_or_skip(&a, ra);
	REQUIRE_RC("second_handle", e_init(&b, rb), CS_OK);
	REQUIRE_RC("third_handle", e_init(&c, rc_), CS_OK);
	unsigned int local = 0, ids[8];
	size_t nids = 8;
	REQUIRE_RC("membership", evs_membership_get(a, &local, ids, &nids), CS_OK);

	struct evs_group k1 = e_group("key1"), k2 = e_group("key2"), k3 = e_group("key3");
	struct evs_group k123[3] = { k1, k2, k3 };
	/* keys differ in their last byte only: all 32 bytes count */
	struct evs_group kz = e_group("key1");
	kz.key[31] = 1;

	/* a: key1 key2 key3; b: key2 twice; c: nothing */
	CHECK_RC("join_a", evs_join(a, k123, 3), CS_OK);
	CHECK_RC("join_b", evs_join(b, &k2, 1), CS_OK);
	CHECK_RC("join_b_twice", evs_join(b, &k2, 1), CS_OK);

	/* tag 1: mcast_joined from a (all three groups) -> a once, b once */
	for (uint32_t i = 0; i < 50; i++)
		send_msg("send_joined", a, NULL, 0, 1, i);
	/* tag 2: mcast_groups to key1 from c (not joined anywhere) -> a only */
	for (uint32_t i = 0; i < 50; i++)
		send_msg("send_groups_unjoined_sender", c, &k1, 1, 2, i);
	/* tag 3: to the key differing in byte 31 -> nobody */
	send_msg("send_byte31", a, &kz, 1, 3, 0);
	/* tag 4: to key3 and key2 -> a once, b once */
	struct evs_group k32[2] = { k3, k2 };
	send_msg("send_two_groups", c, k32, 2, 4, 0);

	e_wait(a, ra, E_DELIVER, 101, 10000);
	e_wait(b, rb, E_DELIVER, 51, 10000);
	e_pump(a, 300, NULL, NULL);
	e_pump(b, 100, NULL, NULL);
	e_pump(c, 100, NULL, NULL);

	int ok = 1;
	for (uint32_t i = 0; i < 50; i++)
		ok &= find_seq(ra, 1, i) == 1 && find_seq(rb, 1, i) == 1 && find_seq(ra, 2, i) == 1 &&
		      find_seq(rb, 2, i) == 0;
	CHECK("self_delivery_and_one_copy", ok, "a got %zu, b got %zu deliveries", ra->ndeliver, rb->ndeliver);
	CHECK("filter_by_joined", find_seq(rc_, 1, 0) == 0 && rc_->ndeliver == 0, "c (joined nothing) got %zu",
	      rc_->ndeliver);
	CHECK("key_all_32_bytes", find_seq(ra, 3, 0) == 0, "message to a different key delivered");
	CHECK("two_groups_one_copy", find_seq(ra, 4, 0) == 1 && find_seq(rb, 4, 0) == 1,
	      "a %d copies, b %d copies", find_seq(ra, 4, 0), find_seq(rb, 4, 0));
	CHECK("deliver_counts", ra->ndeliver == 101 && rb->ndeliver == 51, "a %zu (want 101), b %zu (want 51)",
	      ra->ndeliver, rb->ndeliver);

	/* order: a's stream of tags 1 then 2 is in send order; b sees the same
	 * relative order for what both got */
	uint32_t last1 = 0, last2 = 0;
	int order_ok = 1, first1 = 1, first2 = 1;
	size_t aligned = 0, nodeok = 0, counted = 0;
	for (size_t i = 0; i < ra->n; i++) {
		struct e_ev *e = &ra->ev[i];
		if (e->type != E_DELIVER)
			continue;
		counted++;
		aligned += e->aligned;
		nodeok += e->nodeid == local;
		struct msg m;
		memcpy(&m, e->head, sizeof m);
		if (m.tag == 1) {
			order_ok &= first1 || m.seq == last1 + 1;
			first1 = 0;
			last1 = m.seq;
		}
		if (m.tag == 2) {
			order_ok &= first2 || m.seq == last2 + 1;
			first2 = 0;
			last2 = m.seq;
		}
	}
	CHECK("fifo_per_sender", order_ok, "a sequence was out of order");
	CHECK("payload_aligned_8", aligned == counted, "%zu of %zu payloads 8-byte aligned", aligned, counted);
	CHECK("sender_nodeid", nodeok == counted, "%zu of %zu carry the local node id %u", nodeok, counted, local);
	CHECK("one_confchg_each", ra->nconfchg == 1 && rb->nconfchg == 1 && rc_->nconfchg == 1,
	      "confchgs a=%zu b=%zu c=%zu", ra->nconfchg, rb->nconfchg, rc_->nconfchg);

	/* join twice, leave once: b still receives key2 */
	CHECK_RC("leave_b_once", evs_leave(b, &k2, 1), CS_OK);
	send_msg("send_after_leave_once", a, &k2, 1, 5, 0);
	e_wait(b, rb, E_DELIVER, 52, 5000);
	CHECK("duplicate_join_survives_one_leave", find_seq(rb, 5, 0) == 1, "b missed the key2 message");
	CHECK_RC("leave_b_twice", evs_leave(b, &k2, 1), CS_OK);
	send_msg("send_after_leave_twice", a, &k2, 1, 6, 0);
	e_wait(a, ra, E_DELIVER, 103, 5000);
	e_pump(b, 300, NULL, NULL);
	CHECK("left_group_not_delivered", find_seq(rb, 6, 0) == 0 && find_seq(ra, 6, 0) == 1,
	      "b got it %d times, a %d times", find_seq(rb, 6, 0), find_seq(ra, 6, 0));

	/* payloads: empty, and bytes preserved (hash over 64 KiB) */
	size_t before = ra->ndeliver;
	CHECK_RC("empty_payload", e_send_groups(a, &k1, 1, "", 0), CS_OK);
	static unsigned char buf[65536];
	t_fill(buf, sizeof buf, 42);
	CHECK_RC("payload_64k", e_send_groups(a, &k1, 1, buf, sizeof buf), CS_OK);
	e_wait(a, ra, E_DELIVER, before + 2, 5000);
	if (ra->ndeliver >= before + 2) {
		struct e_ev *e0 = NULL, *e1 = NULL;
		for (size_t i = 0; i < ra->n; i++) {
			if (ra->ev[i].type != E_DELIVER)
				continue;
			if (ra->ev[i].len == 0)
				e0 = &ra->ev[i];
			if (ra->ev[i].len == sizeof buf)
				e1 = &ra->ev[i];
		}
		CHECK("empty_payload/delivered", e0 != NULL, "no zero-length delivery");
		CHECK("payload_64k/intact", e1 && e1->hash == t_fnv(buf, sizeof buf, T_FNV_INIT),
		      "64 KiB payload missing or altered");
	} else {
		t_fail("payloads", "only %zu of 2 delivered", ra->ndeliver - before);
	}

	/* finalize from inside a callback: the dispatch returns CS_OK */
	CHECK_RC("join_c", evs_join(c, &k1, 1), CS_OK);
	send_msg("send_for_finalize", a, &k1, 1, 7, 0);
	send_msg("send_for_finalize_2", a, &k1, 1, 7, 1);
	t_sleep_ms(200);
	rc_->finalize_in_callback = 1;
	cs_error_t drc = evs_dispatch(c, CS_DISPATCH_BLOCKING);
	CHECK("finalize_in_callback/dispatch_returns_ok", drc == CS_OK, "dispatch returned %s", t_err(drc));
	CHECK("finalize_in_callback/finalize_ok", rc_->finalize_rc == CS_OK, "evs_finalize in callback: %s",
	      t_err(rc_->finalize_rc));
	CHECK("finalize_in_callback/stopped", find_seq(rc_, 7, 1) == 0, "callbacks ran after the finalize");
	CHECK_RC("finalize_in_callback/handle_gone", evs_join(c, &k1, 1), CS_ERR_BAD_HANDLE);

	/* the other handles are unaffected (a also has the two tag-7 messages) */
	before = ra->ndeliver;
	send_msg("send_after_c_gone", b, &k1, 1, 8, 0);
	CHECK("other_handles_live", e_wait(a, ra, E_DELIVER, before + 3, 5000) && find_seq(ra, 8, 0) == 1,
	      "a did not receive after c was finalized");

	CHECK_RC("finalize_a", evs_finalize(a), CS_OK);
	CHECK_RC("finalize_b", evs_finalize(b), CS_OK);
	/* a new handle after the last one closed opens a new connection */
	struct e_rec *rd = e_rec_new();
	evs_handle_t d;
	CHECK_RC("reinitialize", e_init(&d, rd), CS_OK);
	CHECK("reinitialize/startup_confchg", e_wait(d, rd, E_CONFCHG, 1, 5000), "no startup confchg");
	CHECK_RC("reinitialize/finalize", evs_finalize(d), CS_OK);
	e_rec_free(ra);
	e_rec_free(rb);
	e_rec_free(rc_);
	e_rec_free(rd);
	return t_done();
}
