from model.bench import (
    END,
    START,
    BenchSetting,
    _with_agreement,
    markdown_section,
    measure_setting,
    notes,
    ratios,
    render_table,
    token_agreement,
    write_section,
)


def test_measure_fp32_and_int8_and_report_agreement(model_settings, make_clip, tmp_path):
    clips = [make_clip(i) for i in range(3)]
    fp32 = measure_setting(BenchSetting("tiny", 2, "none", "score", False, 1), model_settings, 4,
                           clips)
    int8 = measure_setting(BenchSetting("tiny", 2, "int8", "score", False, 1), model_settings, 4,
                           clips)
    assert fp32.videos == 4 and fp32.videos_per_s > 0 and fp32.peak_rss_mb > 0
    assert fp32.latency_p95_s >= fp32.latency_p50_s > 0 and fp32.synthetic is True
    records = [_with_agreement(r, [fp32, int8]) for r in (fp32, int8)]
    agreement = records[1].agreement
    assert agreement["vs"] == "fp32" and 0 < agreement["score_abs_diff_max"] < 10
    assert agreement["memory_ratio"] < 0.8 and records[0].agreement == {}
    assert all(r.samples == {} for r in records)
    assert "tiny b2 int8 score r1" in render_table(records)
    # No batch-8 reference cell here: no ratios, only the note on reading the memory columns.
    assert ratios(records) == [] and [n[:8] for n in notes(records)] == ["Peak RSS"]


def test_generate_records_count_tokens(model_settings, make_clip):
    setting = BenchSetting("tiny", 2, "none", "generate", True, 1)
    record = measure_setting(setting, model_settings.with_changes(max_new_tokens=16), 2,
                             [make_clip(5), make_clip(6)])
    assert 0 < record.tokens_generated <= 2 * 16 and record.tokens_per_s > 0
    assert len(record.samples["tokens"]) == 2


def test_token_agreement():
    assert token_agreement([[1, 2, 3], [4, 5]], [[1, 2, 9], [4, 5]]) == {
        "token_agreement": round((2 / 3 + 1) / 2, 3), "exact_sequences": 0.5}


def test_section_is_replaced_in_place_and_other_content_kept(tmp_path, model_settings, make_clip):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n<!-- e2e -->other section\n")
    record = measure_setting(BenchSetting("tiny", 1, "none", "score", False, 1), model_settings, 1,
                             [make_clip(1)])
    info = {"cpu": "test cpu", "cores": 2, "torch": "x", "python": "3", "load_average": 1.0}
    write_section(path, markdown_section([record], info, "modfleet bench --model-only"))
    write_section(path, markdown_section([record], info, "modfleet bench --model-only --json"))
    text = path.read_text()
    assert text.count(START) == 1 and text.count(END) == 1 and "other section" in text
    assert "--json`" in text and "Synthetic weights" in text and "test cpu, 2 cores" in text
