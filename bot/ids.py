"""Action, callback and block ids shared by the Block Kit builders and the listeners."""

ANSWER_ACTION = "expert_request.answer"
DECLINE_ACTION = "expert_request.decline"
ANSWER_MODAL = "expert_request.answer_modal"
ANSWER_BLOCK = "answer"
ANSWER_INPUT = "answer_text"

WORKING_REACTION = "hourglass_flowing_sand"
