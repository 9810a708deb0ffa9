"""The centralized flow end to end, as a client drives it."""


def test_centralized_flow_merges_amounts_and_terms_and_disburses(api):
    no = api.submit()
    api.to_approval(no)
    assert api.approve("approver1", no, "approve", "100000", 12).status_code == 200
    assert api.approve("approver2", no, "approve", "80000", 18).status_code == 200
    detail = api.application("lead_hka", no)
    assert detail["stage"] == "disbursement"
    assert detail["decision"]["final_amount"] == "90000.00"
    assert detail["decision"]["final_term"] == 15
    assert [h["stage"] for h in detail["history"]] == [
        "pending_assignment",
        "onsite_visit",
        "collecting",
        "approval",
        "disbursement",
    ]
