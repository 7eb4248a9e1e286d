// The built-in profiling text, used when `relu-serve profile` is given no --corpus.
// Written for relu-serve (not taken from any published corpus) to touch several
// registers a chat model sees: narration, instructions, dialogue, facts with numbers,
// code, lists and questions. It is short (about 4,000 characters: 1,000-1,500 tokens depending on the vocabulary),
// enough for a first look at locality; profile real workloads with --corpus for a
// placement you will deploy. With --tokens above its length it is repeated.

export const SAMPLE_TEXT_NAME = 'built-in sample (server/profiler/sample-text.ts)';

export const SAMPLE_TEXT = `The harbour town woke slowly. Fishing boats came in before sunrise, their decks stacked with crates of mackerel and crab, and by seven o'clock the market smelled of salt, diesel and fresh bread from the bakery on the corner. Mira unlocked the bookshop, switched on the kettle and read the list her uncle had left: reorder maps, repair the loose shelf, call the printer about the festival posters.

How to make a simple tomato soup: warm two spoons of olive oil in a heavy pot, soften one chopped onion and two cloves of garlic for five minutes, add a kilogram of ripe tomatoes cut into quarters, a pinch of salt and half a litre of stock. Simmer for twenty minutes, blend until smooth, then taste and adjust with pepper, a little sugar or a squeeze of lemon. Serve with toasted bread.

"Are you sure the bridge is safe?" asked the engineer.
"It held last winter," said the farmer, "and the river was higher then."
"Holding once is not the same as being safe. Let me look at the bolts before the lorry crosses."

Water boils at 100 degrees Celsius at sea level, but at the top of a 3,000 metre mountain it boils at roughly 90 degrees, because the air pressure is lower. That is why pasta takes longer to cook in the mountains. The speed of light in a vacuum is about 299,792 kilometres per second; light from the Sun takes a little over eight minutes to reach the Earth.

def moving_average(values, window):
    """Return the mean of each run of \`window\` consecutive values."""
    if window <= 0:
        raise ValueError("window must be positive")
    total = sum(values[:window])
    out = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        out.append(total / window)
    return out

Checklist before a long bicycle ride:
1. Pump the tyres to the pressure printed on the sidewall.
2. Check that both brakes stop the wheel firmly.
3. Pack a spare inner tube, tyre levers and a small pump.
4. Carry water, a snack and a charged phone.
5. Tell someone your route and when you expect to be back.

Dear Mr. Okafor, thank you for your letter of 12 March. I am sorry that the parcel arrived damaged. We have sent a replacement by express delivery, and you should receive it within three working days. Please keep the damaged item; there is no need to return it. Kind regards, the customer service team.

Why do leaves change colour in autumn? During the summer, leaves are green because they are full of chlorophyll, which captures sunlight to make sugar. As days shorten and nights grow cold, trees stop producing chlorophyll, and the yellow and orange pigments that were there all along become visible. Some trees also make red pigments from the sugars trapped in the leaf.

In 1850 the town had four hundred inhabitants; by 1900 the railway had brought nearly three thousand. The new station needed porters, clerks and signalmen, and the old inn was rebuilt as a hotel with twenty rooms. Historians still argue whether the railway made the town rich or merely busy.

Question: a train leaves at 14:20 and arrives at 17:05. How long is the journey? Answer: from 14:20 to 17:20 is three hours, minus fifteen minutes, so two hours and forty-five minutes.

SELECT customer_id, COUNT(*) AS orders, SUM(total) AS revenue
FROM orders
WHERE created_at >= '2024-01-01'
GROUP BY customer_id
HAVING COUNT(*) > 3
ORDER BY revenue DESC
LIMIT 10;

The committee met on Thursday to discuss the budget. The treasurer reported that income from membership fees had risen by eight percent, while the cost of heating the hall had almost doubled. After a long debate the members agreed to hold two fundraising concerts in the spring and to install better insulation before next winter.

She opened the window and listened. Somewhere below, a dog barked twice and fell silent; a bus sighed at the stop; two students argued cheerfully about a film. The city was never quiet, she thought, only sometimes gentler, like the sea between waves.
`;
