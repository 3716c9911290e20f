"""The controlled world's scene types and its danmaku language.

Each scene type has a visual recipe (palette, shapes, motion, texture) and a
lexicon of scene-specific Chinese phrases: subjective reactions a viewer
would type, not captions. GOSSIP holds scene-independent danmaku (laughter,
memes, emoticons, catchphrases) that appear everywhere, as on Bilibili. The
generator in ``controlled_world.py`` mixes the two, adds typos and
repetition, so comments are related to their scene but diverse and noisy.

Recipe fields:
  sky, ground:  RGB of the top and bottom of the background gradient
  horizon:      where (0..1 of the height) the gradient turns from sky to ground
  shape:        'circle' | 'triangle' | 'rect' | 'line' | 'burst' | 'window'
  colors:       RGB choices for the shapes
  count:        (min, max) number of shapes
  size:         (min, max) shape size in fractions of the frame
  motion:       'drift' | 'fall' | 'rise' | 'sway' | 'flicker' | 'twinkle' | 'orbit' | 'still'
  speed:        frame fractions per second
  texture:      'none' | 'noise' | 'stripes' | 'waves' | 'dunes'
  sun:          optional big static disc (color, x, y, radius)
"""

SCENES = [
    dict(name="beach", zh="海滩",
         sky=(110, 180, 240), ground=(235, 210, 150), horizon=0.55,
         shape="line", colors=[(250, 250, 255), (200, 230, 250)], count=(3, 6), size=(0.3, 0.6),
         motion="drift", speed=0.15, texture="waves", sun=((255, 230, 90), 0.8, 0.2, 0.1),
         lexicon=["好想去海边", "这海水好蓝啊", "夏天的味道", "沙滩排球走起", "海风好舒服",
                  "浪花好美", "想躺在沙滩上", "去海边度假吧", "海鸥呢", "晒成小麦色",
                  "防晒霜涂了吗", "这是马尔代夫吗", "海浪的声音好治愈", "我要去赶海"]),
    dict(name="forest", zh="森林",
         sky=(150, 200, 160), ground=(30, 90, 40), horizon=0.35,
         shape="triangle", colors=[(20, 110, 40), (40, 140, 60), (15, 80, 30)], count=(5, 9), size=(0.15, 0.35),
         motion="sway", speed=0.05, texture="noise", sun=None,
         lexicon=["好绿啊", "森林里有妖怪", "空气一定很好", "小心有熊", "这树好高",
                  "进山采蘑菇", "绿得发光", "迷路了怎么办", "原始森林", "负氧离子爆表",
                  "好想住在林子里", "鸟叫声好听", "这是哪个森林公园"]),
    dict(name="snow", zh="雪山",
         sky=(200, 215, 235), ground=(245, 248, 252), horizon=0.6,
         shape="circle", colors=[(255, 255, 255), (235, 240, 250)], count=(20, 40), size=(0.01, 0.025),
         motion="fall", speed=0.25, texture="none", sun=None,
         lexicon=["下雪了", "好冷啊", "想堆雪人", "冬天来了", "白茫茫一片",
                  "南方人没见过雪", "打雪仗啊", "冻死我了", "雪好大", "瑞雪兆丰年",
                  "滑雪去", "手都冻僵了", "雪景太美了"]),
    dict(name="night_sky", zh="星空",
         sky=(10, 15, 45), ground=(25, 25, 60), horizon=0.85,
         shape="circle", colors=[(255, 255, 220), (200, 220, 255)], count=(25, 45), size=(0.006, 0.015),
         motion="twinkle", speed=0.0, texture="none", sun=((245, 245, 210), 0.25, 0.2, 0.08),
         lexicon=["星星好多", "晚安", "好美的星空", "许个愿吧", "月亮好圆",
                  "银河好清楚", "今晚月色真美", "熬夜的人举手", "流星雨", "城市里看不到星星",
                  "想去看星星", "满天繁星"]),
    dict(name="campfire", zh="篝火",
         sky=(20, 10, 10), ground=(50, 30, 20), horizon=0.75,
         shape="triangle", colors=[(255, 120, 20), (255, 60, 10), (255, 200, 50)], count=(6, 12), size=(0.08, 0.2),
         motion="flicker", speed=0.3, texture="noise", sun=None,
         lexicon=["好暖和", "烤肉走起", "着火了", "篝火晚会", "烤红薯",
                  "围着火堆讲鬼故事", "火好旺", "露营好快乐", "撸串", "烤棉花糖",
                  "小心别烧着", "火光好温暖"]),
    dict(name="underwater", zh="海底",
         sky=(20, 110, 160), ground=(10, 50, 100), horizon=0.5,
         shape="circle", colors=[(180, 230, 255), (120, 200, 240)], count=(8, 16), size=(0.015, 0.05),
         motion="rise", speed=0.2, texture="waves", sun=None,
         lexicon=["好多鱼", "海底世界", "深海恐惧症犯了", "泡泡好可爱", "想去潜水",
                  "海底两万里", "有鲨鱼吗", "珊瑚好漂亮", "憋不住气了", "水族馆既视感",
                  "海绵宝宝住这吗", "好深好蓝"]),
    dict(name="desert", zh="沙漠",
         sky=(240, 200, 120), ground=(220, 150, 70), horizon=0.45,
         shape="circle", colors=[(250, 240, 200)], count=(1, 2), size=(0.06, 0.1),
         motion="still", speed=0.0, texture="dunes", sun=((255, 250, 200), 0.7, 0.15, 0.09),
         lexicon=["好热啊", "渴死了", "骆驼呢", "沙漠之旅", "海市蜃楼",
                  "防晒做好", "大漠孤烟直", "一望无际的沙子", "这是撒哈拉吗", "会不会迷路",
                  "水水水", "热到融化"]),
    dict(name="rain", zh="雨天",
         sky=(95, 100, 110), ground=(60, 65, 75), horizon=0.7,
         shape="line", colors=[(180, 190, 210), (150, 160, 185)], count=(20, 35), size=(0.05, 0.1),
         motion="fall", speed=0.9, texture="stripes", sun=None,
         lexicon=["下雨了", "忘带伞了", "雨声好治愈", "好压抑", "收衣服啦",
                  "适合睡觉", "淋成落汤鸡", "雨好大", "听雨", "窗外下着雨",
                  "阴天心情不好", "打雷了吗"]),
    dict(name="fireworks", zh="烟花",
         sky=(5, 5, 20), ground=(15, 10, 30), horizon=0.9,
         shape="burst", colors=[(255, 80, 80), (80, 255, 120), (255, 220, 60), (120, 160, 255), (255, 100, 220)],
         count=(2, 4), size=(0.12, 0.25), motion="flicker", speed=0.5, texture="none", sun=None,
         lexicon=["新年快乐", "烟花好美", "过年啦", "放烟花咯", "好热闹",
                  "跨年快乐", "烟花易冷", "许个新年愿望", "春节快乐", "砰砰砰",
                  "给大家拜年了", "好绚丽"]),
    dict(name="city", zh="城市夜景",
         sky=(20, 20, 40), ground=(35, 35, 50), horizon=0.8,
         shape="window", colors=[(255, 220, 120), (255, 240, 180), (120, 200, 255)], count=(5, 8), size=(0.1, 0.2),
         motion="still", speed=0.0, texture="none", sun=None,
         lexicon=["城市夜景", "加班狗哭了", "灯火通明", "这是魔都吗", "好繁华",
                  "北上广不相信眼泪", "楼好高", "万家灯火", "打工人下班了", "夜生活开始了",
                  "好想回家", "霓虹灯好美"]),
    dict(name="grassland", zh="草原",
         sky=(120, 190, 250), ground=(110, 190, 70), horizon=0.5,
         shape="circle", colors=[(255, 255, 255), (240, 245, 250)], count=(2, 4), size=(0.06, 0.1),
         motion="drift", speed=0.08, texture="noise", sun=None,
         lexicon=["风吹草低见牛羊", "草原好辽阔", "想骑马", "天好蓝", "心旷神怡",
                  "内蒙古吗", "想在草地上打滚", "羊呢", "云好白", "这才是蓝天白云",
                  "好想去草原", "一望无际的绿"]),
    dict(name="space", zh="太空",
         sky=(0, 0, 8), ground=(5, 5, 15), horizon=0.95,
         shape="circle", colors=[(255, 255, 255)], count=(15, 30), size=(0.004, 0.01),
         motion="orbit", speed=0.3, texture="none", sun=((70, 130, 220), 0.5, 0.55, 0.25),
         lexicon=["宇宙好大", "外星人来了", "地球好美", "宇航员好帅", "星际穿越",
                  "人类好渺小", "流浪地球", "好想上太空", "黑洞好可怕", "我们是孤独的吗",
                  "宇宙的尽头", "失重的感觉"]),
]

# Scene name -> its lexicon phrases: what the relation metric looks for in a comment.
LEXICONS = {s["name"]: s["lexicon"] for s in SCENES}

# Scene-independent danmaku: they appear everywhere, like on Bilibili.
GOSSIP = [
    "哈哈哈哈", "233333", "hhhhh", "前方高能", "空降成功", "第一!", "打卡", "awsl",
    "泪目", "这bgm好评", "好评", "火钳刘明", "来了来了", "为什么不早点推荐给我", "前排",
    "O(∩_∩)O", "(^_^)", "QAQ", "orz", "666", "卧槽", "妙啊", "绝了", "爷青回",
    "有人吗", "弹幕护体", "下次一定", "三连了", "up主好厉害", "好家伙", "笑死我了",
    "这是什么神仙视频", "已截图", "经典", "太真实了", "我来晚了", "催更", "dd",
    "2333", "哈哈哈", "草", "xswl", "yyds", "不明觉厉", "可以可以", "我哭了",
]

# Decorations that make a scene phrase more danmaku-like.
PREFIXES = ["", "", "", "啊啊啊", "哇", "天哪", "我的天", "讲真", "感觉", "好想说"]
SUFFIXES = ["", "", "", "!", "!!!", "~", "啊", "吧", "哈哈哈", "233", "orz", "(^_^)", "QAQ", "...", "了"]

# Common danmaku typos (homophones and near-misses).
TYPOS = {"的": "得", "在": "再", "好": "号", "啊": "阿", "了": "啦", "是": "事", "这": "着",
         "吗": "嘛", "么": "嚒", "想": "像", "美": "没", "大": "达"}

# Comments the cleaning must drop: they are written into the XML too, so the
# default build exercises the same filters as real dumps.
NOISE = [
    (7, '["0.5","0.5","1-1","4","%s","0","0"]'),
    (8, "def text t = {content:\"%s\"};"),
    (1, "█████████▇▆▅▄▃▂"),
    (1, "/n/n/n%s/n/n/n"),
]
