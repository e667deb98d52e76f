"""Writes ``news.jsonl``: Chinese news-style documents composed from templates for shiti's demo
and tests (seeded, so the file is reproducible): ``python -m producer.samples.generate``."""

from __future__ import annotations

import json
import random
from pathlib import Path

PEOPLE = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周杰", "吴婷", "徐明", "孙丽",
          "马超", "朱红", "胡斌", "郭涛", "何琳", "高峰", "林晓", "罗军", "梁爽", "宋佳", "郑凯", "谢颖"]
PLACES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆", "天津", "苏州",
          "长沙", "郑州", "青岛", "厦门", "昆明", "哈尔滨", "浙江省", "广东省", "四川省", "云南省"]
ORGS = ["新华社", "清华大学", "北京大学", "复旦大学", "中国银行", "国家统计局", "中国科学院", "浙江大学",
        "华为公司", "阿里巴巴集团", "国家发展和改革委员会", "中国人民银行", "上海证券交易所", "南方航空公司",
        "中央电视台", "中山大学", "武汉大学", "中国铁路总公司"]
TOPICS = ["新能源汽车", "人工智能", "乡村振兴", "文化旅游", "生物医药", "智能制造", "绿色金融", "数字经济"]

TEMPLATES = [
    "{org}{place}{m}月{d}日电（记者{per}）{place2}今年以来大力发展{topic}产业，全市相关企业已超过{n}家。",
    "{per}在{place}召开的{topic}论坛上表示，{org}将继续加大投入，推动{place2}与{place}的合作。",
    "据{org}消息，{place}{topic}项目于{m}月{d}日正式启动，{per}出席开幕仪式并致辞。",
    "{place}市民{per}告诉记者，近年来{place}的交通越来越方便，到{place2}只需要两个小时。",
    "{org}发布报告称，{place}上半年{topic}投资同比增长{n}%，增速位居全国前列。",
    "{per}和{per2}代表{org}前往{place}考察，双方就{topic}领域的合作达成共识。",
    "记者从{org}获悉，{place2}将于{m}月举办{topic}博览会，预计吸引{n}家企业参展。",
    "{org}教授{per}指出，{topic}的发展离不开人才，{place}应当加强与{org2}的联合培养。",
]


def sentence(rng: random.Random) -> str:
    per, per2 = rng.sample(PEOPLE, 2)
    place, place2 = rng.sample(PLACES, 2)
    org, org2 = rng.sample(ORGS, 2)
    return rng.choice(TEMPLATES).format(per=per, per2=per2, place=place, place2=place2, org=org, org2=org2,
                                        topic=rng.choice(TOPICS), m=rng.randint(1, 12), d=rng.randint(1, 28),
                                        n=rng.randint(3, 300))


def documents(n: int = 240, seed: int = 7) -> list[dict[str, str]]:
    """``n`` short articles plus one long report (> 5,000 characters, entities near its end)."""
    rng = random.Random(seed)
    docs = [{"id": f"news-{i:04d}", "text": "".join(sentence(rng) for _ in range(rng.randint(2, 6)))}
            for i in range(n)]
    filler = "".join(sentence(rng) for _ in range(200))
    long_text = filler[:5200] + "报告最后指出，北京大学教授王芳将于明年赴广州主持中山大学的联合研究项目。"
    docs.insert(n // 2, {"id": "news-long-report", "text": long_text})
    return docs


def main() -> None:
    out = Path(__file__).with_name("news.jsonl")
    with out.open("w", encoding="utf-8") as fh:
        for doc in documents():
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
