/**
 * Seeded zh and en text lines, rendered from SVG with system fonts, for the
 * OCR evaluation set and the INT8 calibration pages. Two seeds give two
 * disjoint-looking sets, so calibration never sees the evaluation images.
 *
 * Needs the Debian packages fonts-noto-cjk and fonts-dejavu-core.
 */
import sharp from 'sharp';

export type Language = 'zh' | 'en';

const zhWords = [
  '欢迎', '订单', '发货', '设备', '状态', '正常', '边缘', '推理', '网络', '连接', '服务', '系统', '数据', '时间',
  '今天', '明天', '上午', '下午', '北京', '上海', '深圳', '广州', '价格', '总计', '支付', '成功', '失败', '请求',
  '等待', '处理', '完成', '用户', '登录', '密码', '安全', '电池', '电量', '温度', '湿度', '仓库', '库存', '商品',
  '快递', '地址', '电话', '会议', '通知', '更新', '版本', '下载', '文件', '图片', '识别', '文字', '城市', '公司',
  '银行', '学校', '医院', '超市', '开始', '结束', '关闭', '打开', '检查', '维护', '报告', '已经', '我们', '客户',
];
const enWords = [
  'invoice', 'order', 'shipped', 'delivery', 'status', 'device', 'online', 'offline', 'battery', 'network', 'gateway',
  'sensor', 'camera', 'upload', 'total', 'paid', 'card', 'cash', 'receipt', 'warehouse', 'stock', 'item', 'price',
  'update', 'version', 'report', 'meeting', 'room', 'floor', 'gate', 'closed', 'open', 'level', 'service', 'ready',
  'error', 'warning', 'station', 'platform', 'ticket', 'monday', 'friday', 'morning', 'north', 'south', 'parcel',
  'customer', 'account', 'balance', 'power', 'signal', 'storage', 'backup', 'printer', 'office', 'city', 'route',
];
const zhUnits = ['元', '号', '件', '台', '个'];
const enUnits = ['EUR', 'USD', 'kg', '%', 'km'];

export const latinFonts = ['DejaVu Sans', 'DejaVu Serif'];
export const cjkFonts = ['Noto Sans CJK SC', 'Noto Sans Mono CJK SC'];

export interface TextLine {
  text: string;
  language: Language;
  font: string;
  /** Font size in pixels. */
  size: number;
  /** Grey level of the ink (0 = black). */
  ink: number;
  weight: 'normal' | 'bold';
}

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

function number(random: () => number): string {
  const n = Math.floor(random() * 10000);
  return random() < 0.3 ? `${n}.${String(Math.floor(random() * 100)).padStart(2, '0')}` : String(n);
}

function zhText(random: () => number): string {
  const words = Array.from({ length: 2 + Math.floor(random() * 3) }, () => pick(random, zhWords));
  if (random() < 0.35) words.splice(Math.floor(random() * words.length), 0, `${Math.floor(random() * 1000)}${pick(random, zhUnits)}`);
  return words.join('');
}

function enText(random: () => number): string {
  const words = Array.from({ length: 2 + Math.floor(random() * 3) }, () => pick(random, enWords));
  if (random() < 0.5) words[0] = words[0]![0]!.toUpperCase() + words[0]!.slice(1);
  if (random() < 0.4) words.push(number(random), ...(random() < 0.5 ? [pick(random, enUnits)] : []));
  return words.join(' ');
}

/** One line of text in `language`, with its font, size and ink drawn from `random`. */
export function randomLine(random: () => number, language: Language): TextLine {
  return {
    text: language === 'zh' ? zhText(random) : enText(random),
    language,
    font: pick(random, language === 'zh' ? cjkFonts : latinFonts),
    size: 26 + Math.floor(random() * 20),
    ink: Math.floor(random() * 70),
    weight: random() < 0.2 ? 'bold' : 'normal',
  };
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Text lines laid out top to bottom at `lineHeight` pixels, on a flat grey `background`, as an SVG page. */
export function pageSvg(lines: readonly TextLine[], width: number, height: number, background: number, lineHeight: number): string {
  const grey = (v: number) => `rgb(${v},${v},${v})`;
  const texts = lines.map(
    (l, i) =>
      `<text x="${Math.round(l.size * 0.8)}" y="${Math.round((i + 0.5) * lineHeight + l.size * 0.35)}" font-family="${l.font}" ` +
      `font-size="${l.size}" font-weight="${l.weight}" fill="${grey(l.ink)}">${escapeXml(l.text)}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="${grey(background)}"/>${texts.join('')}</svg>`;
}

/** One line alone, cropped to its ink with a margin of 0.6 × its font size, as a greyscale PNG. */
export async function renderLine(line: TextLine, background: number): Promise<Buffer> {
  const width = Math.ceil(line.size * (line.text.length + 2) * 1.1);
  const svg = pageSvg([line], width, line.size * 3, background, line.size * 3);
  const trimmed = await sharp(Buffer.from(svg)).greyscale().trim({ background: { r: background, g: background, b: background }, threshold: 20 }).toBuffer();
  const margin = Math.round(line.size * 0.6);
  return sharp(trimmed)
    .extend({ top: margin, bottom: margin, left: margin, right: margin, background: { r: background, g: background, b: background } })
    .greyscale()
    .png({ compressionLevel: 9 })
    .toBuffer();
}
