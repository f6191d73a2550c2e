"""The engine's own FAISS tests, run again with the pgvector store on a real PostgreSQL (`tests/servers.py`).

The test functions below are the very ones of `test_engine.py`, `test_incremental.py` and `test_watcher.py`,
imported: here the `config` they build on (through `fake_engine`, `knowledge_base` and `watching`) names the
pgvector backend and a schema of its own. Left out are the tests about the FAISS files themselves (the .npz,
its temp files), and the one where an old snapshot is searched after its passages were deleted from the table:
an old snapshot answers only from its passages still there (`search/pgvector_index.py`).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from rag_engine.config import Config
from rag_engine.ingest.knowledge import KnowledgeBase
from rag_engine.ingest.pg_store import PgStore
from tests.rag_engine.ingest.pg import DSN_ENV, pgvector_config
from tests.rag_engine.ingest.test_incremental import (  # noqa: F401  (collected here, on pgvector)
    test_a_deleted_file_drops_its_passages,
    test_a_pdf_that_becomes_corrupt_fails_and_loses_its_passages,
    test_a_renamed_file_reuses_every_vector,
    test_a_restart_loads_the_stored_index,
    test_a_touched_file_is_not_an_update,
    test_changed_chunking_settings_rebuild_the_domain,
    test_editing_one_paragraph_reembeds_only_that_passage,
    test_full_reembeds_everything_and_continues_the_version,
    test_nothing_changed_means_nothing_applied_or_embedded,
)
from tests.rag_engine.ingest.test_watcher import (  # noqa: F401
    test_a_burst_of_files_is_few_updates,
    test_a_created_file_is_one_update,
    test_an_editor_style_save_is_one_change,
    test_ignored_files_cause_no_sync,
    test_the_initial_sync_reports_every_domain,
    watching,
)
from tests.rag_engine.test_engine import (  # noqa: F401
    test_a_changed_file_rebuilds_its_domain,
    test_answer_carries_the_whole_trace,
    test_bad_files_are_skipped_with_reasons_and_the_rest_indexed,
    test_changed_embedding_model_setting_rebuilds_instead_of_mixing,
    test_empty_domain_answers_that_nothing_is_indexed,
    test_question_far_from_every_passage_is_not_answered,
    test_stored_index_is_reused_without_embedding_again,
    test_without_a_domain_every_domain_is_searched,
)
from tests.servers_pg import PostgresServer


@pytest.fixture
def config(config: Config, postgres_server: PostgresServer, pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The shared fake-model config, on the pgvector store."""
    monkeypatch.setenv(DSN_ENV, postgres_server.dsn)
    return pgvector_config(config, pg_schema)


def test_these_tests_run_on_the_pgvector_store(knowledge_base: KnowledgeBase, postgres_server: PostgresServer) -> None:
    """The tests above really index into PostgreSQL, not into FAISS files."""
    assert isinstance(knowledge_base.store, PgStore)
    update = knowledge_base.sync("zoology")
    assert update.rebuilt and not knowledge_base.index_path("zoology").exists()
    with psycopg.connect(postgres_server.dsn) as conn:
        table = sql.Identifier(knowledge_base.config.index.schema, "passages")
        count = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE domain = 'zoology'").format(table)).fetchone()
    assert count == (update.passages,)
