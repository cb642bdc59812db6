"""The sidebar folds only the newest conversations: the entries are the ones a fold of every
conversation gives, a Compare round whole even when its other columns are older than the rest."""

from __future__ import annotations

from chatcore.compare import BEST
from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.storage import conversations as store
from testkit.compare_data import finished_round

PARAMS = GenerationParams(max_tokens=2)


def every_entry(services: Services, limit: int) -> list[store.SidebarEntry]:
    with services.db.cursor() as cur:
        return store.folded_entries(cur, limit, scan=None)


def test_a_round_continued_in_one_column_is_listed_whole(compare_services: Services) -> None:
    models = ["mid:latest", "fast:latest", "slow:latest"]
    round_id = finished_round(compare_services, models, blind=False)
    with compare_services.db.cursor() as cur:
        columns = [
            row[0]
            for row in cur.execute(
                "SELECT conversation_id FROM compare_entries WHERE round_id = ? ORDER BY position",
                [round_id],
            ).fetchall()
        ]
    for n in range(store.SIDEBAR_SCAN + 2):  # newer chats push the round out of the scan
        compare_services.chat.send(None, f"chat {n}", "mid:latest", PARAMS).consume()
    # the middle column is continued: it alone is among the newest conversations
    compare_services.chat.send(columns[1], "go on", "fast:latest", PARAMS).consume()

    [newest] = compare_services.chat.sidebar_entries(1)
    assert newest.round_id == round_id
    assert newest.conversation_id == columns[0]  # the round's entry opens its first column
    assert newest.compared_models == tuple(models)
    assert compare_services.chat.sidebar_entries(5) == every_entry(compare_services, 5)


def test_fewer_entries_than_asked_fold_everything(compare_services: Services) -> None:
    for n in range(3):
        compare_services.chat.send(None, f"chat {n}", "mid:latest", PARAMS).consume()
    entries = compare_services.chat.sidebar_entries(20)
    assert len(entries) == 3 and entries == every_entry(compare_services, 20)


def test_the_kept_entries_follow_every_change_they_show(compare_services: Services) -> None:
    chat = compare_services.chat
    chat.send("plain", "first words", "mid:latest", PARAMS).consume()
    round_id = finished_round(compare_services, ["mid:latest", "fast:latest"], blind=True)
    blind = chat.sidebar_entries(20)
    assert blind[0].round_id == round_id and blind[0].compared_models == ("?", "?")
    assert chat.sidebar_entries(20) == blind  # nothing changed: the kept fold

    compare_services.compare.vote(round_id, BEST, "A")  # the vote names the blind round's models
    named = chat.sidebar_entries(20)[0].compared_models  # in its columns' (shuffled) order
    assert sorted(named) == ["fast:latest", "mid:latest"]
    compare_services.history.rename("plain", "Renamed")  # a title, without new activity
    assert [e.title for e in chat.sidebar_entries(20)][-1] == "Renamed"
    chat.send("plain", "more words", "mid:latest", PARAMS).consume()  # new activity: on top
    assert chat.sidebar_entries(20)[0].conversation_id == "plain"
    compare_services.history.delete(["plain"])
    assert [e.conversation_id for e in chat.sidebar_entries(20)] == [blind[0].conversation_id]
    assert chat.sidebar_entries(20) == every_entry(compare_services, 20)
